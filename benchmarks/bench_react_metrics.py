"""Time the REACT2024 metrics on a validation-sized random problem and print a table.

Usage: python benchmarks/bench_react_metrics.py [--speakers 100] [--samples 10] [--neighbours 3] [--frames 750]

The problem: `speakers` speakers, `samples` generated reactions each, `frames` x 25 emotion dims, and an
appropriateness matrix with exactly `neighbours` appropriate listeners per speaker (its own plus random others).
FRD dominates: speakers x samples x neighbours x 3 DTWs (AU, VA, EXP) of frames x frames cells each.
"""
import argparse, os, sys, time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from speechface.metrics.react import frc, frd, frdiv, frdvs, frsyn, frvar, random_baseline  # noqa: E402


def problem(speakers: int, samples: int, neighbours: int, frames: int, seed: int = 0):
    "Random predictions, listeners, speakers and an appropriateness matrix with `neighbours` ones per row."
    rng = np.random.default_rng(seed)
    pred = random_baseline(speakers, samples, frames, seed=seed)                   # (S, K, T, 25)
    listener = rng.random((speakers, frames, 25), dtype=np.float32)                # (S, T, 25)
    speaker = rng.random((speakers, frames, 25), dtype=np.float32)
    appropriate = np.eye(speakers, dtype=bool)
    for s in range(speakers):
        others = rng.choice(np.delete(np.arange(speakers), s), size=neighbours - 1, replace=False)
        appropriate[s, others] = True
    return pred, listener, speaker, appropriate


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--speakers", type=int, default=100)
    ap.add_argument("--samples", type=int, default=10)
    ap.add_argument("--neighbours", type=int, default=3)
    ap.add_argument("--frames", type=int, default=750)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--serial-too", action="store_true", help="also time FRD on one thread (parallel=False)")
    a = ap.parse_args()
    pred, listener, speaker, appropriate = problem(a.speakers, a.samples, a.neighbours, a.frames, a.seed)
    n_dtw = a.speakers * a.samples * a.neighbours * 3
    print(f"problem: {a.speakers} speakers x {a.samples} samples x {a.neighbours} appropriate listeners, "
          f"{a.frames} x 25; {n_dtw} DTWs of {a.frames}x{a.frames}; {os.cpu_count()} cores")
    runs = [("FRD (C DTW, OpenMP)", lambda: frd(pred, listener, appropriate, parallel=True))]
    if a.serial_too: runs.append(("FRD (C DTW, 1 thread)", lambda: frd(pred, listener, appropriate, parallel=False)))
    runs += [("FRC", lambda: frc(pred, listener, appropriate)),
             ("FRDiv", lambda: frdiv(pred)), ("FRDvs", lambda: frdvs(pred)), ("FRVar", lambda: frvar(pred)),
             ("FRSyn (sample 0, baseline)", lambda: frsyn(pred, speaker)),
             ("FRSyn (all samples, skip)", lambda: frsyn(pred, speaker, all_samples=True, constant_dims="skip"))]
    print(f"{'metric':<28} {'value':>12} {'seconds':>9}")
    print("-" * 51)
    for name, fn in runs:
        t = time.perf_counter()
        v = fn()
        dt = time.perf_counter() - t
        extra = f"   ({1e3 * dt / n_dtw:.2f} ms per DTW)" if name.startswith("FRD ") else ""
        print(f"{name:<28} {v:>12.4f} {dt:>9.2f}{extra}", flush=True)


if __name__ == "__main__":
    main()
