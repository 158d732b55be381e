"""Render and render+encode speed of the two renderers (pyrender offscreen, matplotlib) on one corpus sequence.

Usage: python benchmarks/bench_render.py [ROOT] [--size 512] [--frames N] [--backends pyrender matplotlib]
Without ROOT the tiny synthetic corpus is generated into a temporary folder first. The longest utterance is used
(or --stem). "render" consumes the frames without keeping them; "render+encode" writes an H.264 MP4 with the
speech muxed in (`animate_to_video`). Prints a table and one JSON line per row. The machine's 1-minute load
average is printed with each row: on a shared machine, compare only rows taken at a similar load.
"""
import argparse, json, os, tempfile, time
from pathlib import Path

import numpy as np


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("root", nargs="?")
    p.add_argument("--preset", default="tiny")
    p.add_argument("--stem", default=None, help="utterance to render (default: the longest)")
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--frames", type=int, default=None)
    p.add_argument("--backends", nargs="+", default=["pyrender", "matplotlib"])
    p.add_argument("--fps", type=float, default=30)
    a = p.parse_args()
    from speechface.viz.render import render_frames, opengl_platform
    from speechface.viz.video import animate_to_video, video_info
    root = Path(a.root) if a.root else None
    if root is None:
        from speechface.data.synth import generate_corpus
        root = Path(tempfile.mkdtemp()) / a.preset
        generate_corpus(root, a.preset, progress=False)
    faces = np.load(root / "faces.npy")
    stem = a.stem or max((f.stem for f in (root / "vertices_npy").glob("*.npy")),
                         key=lambda s: np.load(root / "vertices_npy" / f"{s}.npy", mmap_mode="r").shape[0])
    seq = np.load(root / "vertices_npy" / f"{stem}.npy")[: a.frames]
    wav = root / "wav" / f"{stem}.wav"
    out_dir = Path(tempfile.mkdtemp())
    rows = []
    for backend in a.backends:
        platform = opengl_platform() if backend == "pyrender" else "-"
        for _ in render_frames(seq[:2], faces, backend, size=a.size): pass          # warm-up: context, shaders
        t0 = time.perf_counter()
        for _ in render_frames(seq, faces, backend, size=a.size): pass
        dt = time.perf_counter() - t0
        rows.append({"backend": backend, "platform": platform, "mode": "render", "size": a.size, "frames": len(seq),
                     "V": seq.shape[1] // 3, "fps": round(len(seq) / dt, 1), "ms_per_frame": round(1e3 * dt / len(seq), 1),
                     "load1": round(os.getloadavg()[0], 2)})
        t0 = time.perf_counter()
        out = animate_to_video(seq, faces, out_dir / f"{backend}.mp4", audio=wav, fps=a.fps, size=a.size, backend=backend)
        dt = time.perf_counter() - t0
        assert video_info(out)["n_frames"] == len(seq)
        rows.append({**rows[-1], "mode": "render+encode", "fps": round(len(seq) / dt, 1),
                     "ms_per_frame": round(1e3 * dt / len(seq), 1), "load1": round(os.getloadavg()[0], 2)})
    keys = list(rows[0])
    print(f"{stem}: {len(seq)} frames, V={seq.shape[1] // 3}, {os.cpu_count()} CPU cores")
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for r in rows: print("| " + " | ".join(str(r[k]) for k in keys) + " |")
    for r in rows: print(json.dumps(r))


if __name__ == "__main__": main()
