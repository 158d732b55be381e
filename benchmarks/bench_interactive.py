"""How long the JupyterLab demo (`nbs/95_interactive.ipynb`) takes to animate a sentence, per panel size.

Usage: python benchmarks/bench_interactive.py [--data DIR --ckpts DIR] [--sizes 256 384 512] [--sentences 3]
Runs the notebook's own definition cells (everything above "## Try it") in an execnb shell, builds its `SpeechDemo`
for each panel size and presses Animate (`demo.run`) on held-out corpus sentences, as a user would. Each run is split
into its phases by timing the functions the demo calls: the model (`animate`), rendering (`comparison_frames`:
full face + mouth close-up + caption + lip-gap chart per panel, GT | prediction) and H.264 + AAC encoding
(`write_video`). Without --data/--ckpts the tiny corpus is generated and a model trained for a few epochs first
(the timing of rendering does not depend on how well the model is trained). Prints a table and one JSON line per row.
"""
import argparse, json, os, subprocess, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NB = ROOT / "nbs" / "95_interactive.ipynb"


def definition_cells() -> list[str]:
    "The notebook's code cells before its '## Try it' section (imports, definitions and their lesson cells)."
    cells = json.loads(NB.read_text())["cells"]
    out = []
    for c in cells:
        src = "".join(c["source"])
        if c["cell_type"] == "markdown" and src.startswith("## Try it"): break
        if c["cell_type"] == "code": out.append(src)
    return out


def tiny_setup(work: Path) -> tuple[Path, Path]:
    "The tiny corpus and a model trained on it for a few epochs (the fallback when no demo output is given)."
    from speechface.data.synth import cached_corpus
    data = cached_corpus("tiny", 0)
    ckpts = work / "checkpoints"
    subprocess.run([sys.executable, "-m", "speechface.cli", "train", f"dataset.root={data}", f"out_dir={ckpts}",
                    "run_name=sft", "trainer=cpu", "trainer.epochs=2", "trainer.max_minutes=2"], check=True,
                   stdout=subprocess.DEVNULL)
    return data, ckpts


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", help="a corpus folder (e.g. demo_out/data of `speechface demo`)")
    p.add_argument("--ckpts", help="its checkpoints folder (e.g. demo_out/checkpoints)")
    p.add_argument("--sizes", type=int, nargs="+", default=[256, 384, 512])
    p.add_argument("--sentences", type=int, default=3, help="held-out sentences animated per size")
    a = p.parse_args()
    from execnb.shell import CaptureShell
    work = Path(tempfile.mkdtemp(prefix="bench_interactive_"))
    data, ckpts = (Path(a.data), Path(a.ckpts)) if a.data else tiny_setup(work)
    os.environ.update(SPEECHFACE_INTERACTIVE_DATA=str(data), SPEECHFACE_INTERACTIVE_CKPTS=str(ckpts),
                      SPEECHFACE_INTERACTIVE_OUT=str(work / "out"), MPLBACKEND="Agg")
    sh = CaptureShell()
    for src in definition_cells():
        sh.run(src)
        if sh.exc: raise RuntimeError(f"a definition cell of {NB.name} failed:\n{src[:300]}\n{sh.exc}")
    g = sh.user_ns
    phases = {}
    def timed(name, fn):
        def wrapper(*args, **kw):
            t0 = time.perf_counter()
            r = fn(*args, **kw)
            if name == "render": r = list(r)                       # a generator: time the frames, not its creation
            phases[name] = phases.get(name, 0.0) + time.perf_counter() - t0
            return r
        return wrapper
    g["animate"] = timed("model", g["animate"])
    g["comparison_frames"] = timed("render", g["comparison_frames"])
    g["write_video"] = timed("encode", g["write_video"])
    rows = []
    for size in a.sizes:
        demo = g["SpeechDemo"](data, ckpts, work / "out", size)
        if not demo.ready or not demo.sentences: raise SystemExit(f"no model under {ckpts} or no corpus at {data}")
        labels = [k for k in demo.sentences if k.startswith("test")][: a.sentences]
        demo.run(speech=g["corpus_speech"](data, demo.sentences[labels[0]]))          # warm-up: model load, GL context
        for label in labels:
            phases.clear()
            demo.sentence.value = demo.sentences[label]
            t0 = time.perf_counter()
            demo.run()
            total = time.perf_counter() - t0
            if "✓" not in demo.status.value: raise RuntimeError(f"the demo failed on {label}: {demo.status.value}")
            n, fps = len(demo.result["frames"]), demo.result["fps"]
            h, w = demo.result["frames"][0].shape[:2]
            rows.append({"size": size, "frame_px": f"{w}x{h}", "stem": label.split(" · ")[1], "speech_s": round(n / fps, 2),
                         "frames": n, "total_s": round(total, 2), **{k: round(v, 2) for k, v in phases.items()},
                         "total_per_speech_s": round(total / (n / fps), 2), "load1": round(os.getloadavg()[0], 2)})
    from speechface.bench import markdown_table
    print(f"{NB.name}: {os.cpu_count()} CPU cores, corpus {data}, models {ckpts}")
    print(markdown_table(rows, {k: k for k in rows[0]}))
    for r in rows: print(json.dumps(r))


if __name__ == "__main__": main()
