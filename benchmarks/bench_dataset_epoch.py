"""One epoch over a FaceFormer-layout corpus with mel clips: time and peak memory, lazy loading vs corpus size.

Usage: python benchmarks/bench_dataset_epoch.py [ROOT] [--batch-size 4] [--workers 0]
Without ROOT the demo synthetic corpus is generated into a temporary folder first.
Prints a table and one JSON line.
"""
import argparse, json, resource, tempfile, time
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm


def rss_mb() -> float:
    "Current resident set size of this process in MB (Linux)."
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"): return int(line.split()[1]) / 1024
    return float("nan")


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("root", nargs="?")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--split", default="train")
    a = p.parse_args()
    from speechface.data.dataset import FaceFormerDataset, collate_faceformer
    root = a.root
    if root is None:
        from speechface.data.synth import generate_corpus
        root = Path(tempfile.mkdtemp()) / "small"
        generate_corpus(root, "small", progress=False)
    corpus_mb = sum(f.stat().st_size for f in Path(root).rglob("*") if f.is_file()) / 1e6
    ds = FaceFormerDataset(root, a.split)
    dl = DataLoader(ds, batch_size=a.batch_size, shuffle=True, num_workers=a.workers, collate_fn=collate_faceformer,
                    generator=torch.Generator().manual_seed(0))
    rss0 = rss_mb()
    peak = rss0
    t0 = time.perf_counter()
    n = frames = clips = 0
    for b in tqdm(dl, desc="epoch", unit="batch"):
        n += len(b["name"])
        frames += int(b["motion_mask"].sum())
        clips += int(b["mel_mask"].sum())
        peak = max(peak, rss_mb())
    dt = time.perf_counter() - t0
    row = {"corpus_MB": round(corpus_mb, 1), "split": a.split, "utterances": n, "frames": frames, "mel_clips": clips,
           "batch": a.batch_size, "workers": a.workers, "epoch_s": round(dt, 2), "utt_per_s": round(n / dt, 1),
           "rss_start_MB": round(rss0), "rss_peak_MB": round(peak),
           "maxrss_MB": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}
    print("| " + " | ".join(row) + " |")
    print("|" + "---|" * len(row))
    print("| " + " | ".join(map(str, row.values())) + " |")
    print(json.dumps(row))


if __name__ == "__main__": main()
