"""Time FaceFormer inference and print markdown tables plus one JSON line per row.

Usage: python benchmarks/bench_inference.py [--device cpu|cuda|auto] [--frames 150 300 600 1800] [--seconds 2 8 16]
                                            [--max-recompute-s 60] [--threads N] [--only decoding|animate] [--tiny]

(a) Decoding only, at VOCASET decoder sizes (d 64, 3V 15069, 8 subjects), audio tokens precomputed: cached
    autoregressive decoding (mode='autoregressive') against the reference's full-prefix recomputation
    (mode='recompute'), their ratio and peak memory. Recompute runs longer than --max-recompute-s are timed on a
    prefix and extrapolated (labelled in the table and in the JSON).
(b) End-to-end `predict` with the wav2vec2-base architecture (random weights, no download) at VOCASET and BIWI
    output sizes for 2, 8 and 16 s of audio, split into encoder and decoder time.
Same as `speechface bench inference` (options parsed by the CLI); the code lives in speechface/bench.py (nbs/50_bench.ipynb).
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from speechface.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["bench", "inference", *sys.argv[1:]]))
