"""Training throughput of the supervised trainer on 1 and 2 processes, in fp32 and bf16, measured in one run.

Usage: python benchmarks/bench_train_throughput.py [ROOT] [--preset tiny|small] [--epochs 3] [--processes 1 2]
                                                   [--precisions no bf16] [--device cpu|cuda] [--batch-size 8]

Each configuration is `torchrun --standalone --nproc_per_node N -m speechface.cli train ...` with the same global
batch (one torch thread per process on CPU); the first epoch is warm-up, the table reports the median of the
others: optimiser steps/s, training utterances/s, peak memory per process (max over processes: the resident set
on CPU, CUDA max allocated on GPU) and the speed-up over 1 process in fp32. Prints a markdown table and one JSON
line per configuration.
"""
import argparse, csv, json, os, statistics, subprocess, sys, tempfile, time
from pathlib import Path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("root", nargs="?", help="corpus folder (default: the cached synthetic corpus of --preset)")
    p.add_argument("--preset", default="tiny")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    p.add_argument("--precisions", nargs="+", default=["no", "bf16"])
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--feature-dim", type=int, default=64)
    a = p.parse_args(argv)
    if a.root: root = Path(a.root)
    else:
        from speechface.data.synth import cached_corpus
        root = cached_corpus(a.preset)
    rows = []
    for prec in a.precisions:
        for n in a.processes:
            out = Path(tempfile.mkdtemp())
            cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(n),
                   "-m", "speechface.cli", "train", "--quiet", f"dataset.root={root}", f"out_dir={out}", "run=bench",
                   f"device={a.device}", "threads=1", f"trainer.epochs={a.epochs}", f"trainer.batch_size={a.batch_size}",
                   "trainer.mode=teacher", f"trainer.val_every={a.epochs}", f"trainer.mixed_precision={prec}",
                   f"model.feature_dim={a.feature_dim}", "model.audio.mel_dim=64", "trainer.resume=false"]
            t0 = time.time()
            r = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
            if r.returncode:
                print(r.stdout[-2000:], r.stderr[-4000:], file=sys.stderr)
                return 1
            with open(out / "bench" / "metrics.csv") as f: rows_csv = list(csv.DictReader(f))
            hist = rows_csv[1:] or rows_csv                                          # the first epoch is warm-up
            med = lambda k: statistics.median(float(h[k]) for h in hist)
            rows.append({"processes": n, "precision": prec, "steps_per_s": med("steps_per_s"), "items_per_s": med("items_per_s"),
                         "epoch_s": med("epoch_s"), "peak_mib": max(float(h["peak_mib"]) for h in hist), "wall_s": time.time() - t0})
    base = next((r for r in rows if r["processes"] == 1 and r["precision"] == "no"), rows[0])
    for r in rows: r["speedup"] = r["items_per_s"] / base["items_per_s"]
    print(f"# supervised training throughput ({root.name}, global batch {a.batch_size}, device {a.device}, "
          f"{a.epochs - 1} timed epochs)\n")
    print("| processes | precision | steps/s | utterances/s | epoch (s) | peak MiB / process | speed-up |\n|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['processes']} | {r['precision']} | {r['steps_per_s']:.2f} | {r['items_per_s']:.2f} | {r['epoch_s']:.2f} | "
              f"{r['peak_mib']:.0f} | {r['speedup']:.2f}× |")
    for r in rows: print(json.dumps(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
