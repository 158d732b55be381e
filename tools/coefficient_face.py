"""BEAT2 face coefficients seen and measured: a frame of GT | static | training mean on the coefficient head, and the
perceptual table of the baselines on a synthetic BEAT2 test split.

Usage: python tools/coefficient_face.py [--preset small] [--seed 0] [--shift 3] [--video OUT.mp4]
Writes docs/results/coefficient_face_frame.png (the widest-open frame of the first test recording's ground truth,
the three sequences side by side) and docs/results/beat2_coefficient_perceptual_<preset>.csv (`coefficient_table`,
the lip-reader trained on the train + val ground truth). With --video, the whole first test recording as an MP4
with its speech (not committed). Deterministic: `cached_beat2_corpus(preset, seed)`, the lip-reader seeded.
"""
import argparse, json
from pathlib import Path

import torch
from PIL import Image

from speechface.data.beat2 import beat2_paths
from speechface.data.beat2_synth import cached_beat2_corpus, CoefficientFace
from speechface.data.mesh import inner_lip_distance
from speechface.metrics.coefficients import coefficient_vertices
from speechface.evaluation.coefficients import (beat2_face_recordings, coefficient_methods, train_coefficient_lip_reader,
                                                coefficient_table)
from speechface.viz.coefficient_face import coefficient_rig, coefficient_frames, coefficient_video

RESULTS = Path(__file__).resolve().parents[1] / "docs/results"

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="small")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--shift", type=int, default=3, help="frames of delay of the shifted GT")
    p.add_argument("--size", type=int, default=192, help="pixels per face panel of the frame")
    p.add_argument("--video", type=Path, help="also write the first test recording as an MP4 here")
    a = p.parse_args()
    torch.set_num_threads(1)
    root = cached_beat2_corpus(a.preset, a.seed)
    face = CoefficientFace()
    train, val, test = (beat2_face_recordings(root, s) for s in ("train", "val", "test"))
    methods = coefficient_methods(train, test, a.shift)
    reader = train_coefficient_lip_reader(face, train + val, epochs=30, seed=a.seed)
    tab = coefficient_table(face, test, methods, reader, n_boot=1000, seed=a.seed)
    csv = RESULTS / f"beat2_coefficient_perceptual_{a.preset}.csv"
    tab.round(4).to_csv(csv, index_label="method")
    print(tab[["closure F1", "false closures", "MTM (ms)", "events detected", "opening-loudness r", "lip-read acc"]].round(3).to_string())
    print(f"{csv} ({len(test)} test recordings; lip-reader train accuracy {reader['train_acc']:.3f} on {len(train) + len(val)})")
    r = test[0]
    rig = coefficient_rig(face)
    seqs = {k: v[0] for k, v in methods.items() if not k.startswith("GT +")}
    gap = inner_lip_distance(coefficient_vertices(face, seqs["GT"]), *rig.lip_pairs)
    t = int(gap.argmax())
    img = next(f for i, f in enumerate(coefficient_frames(face, seqs, r["phones"], size=a.size, rig=rig)) if i == t)
    Image.fromarray(img).quantize(colors=128).save(RESULTS / "coefficient_face_frame.png", optimize=True)   # palette: a small file
    print(f"{RESULTS / 'coefficient_face_frame.png'}: {r['id']} frame {t} ({t / 30:.2f} s, GT lip gap {1000 * gap[t]:.1f} mm), "
          f"{img.shape[1]}x{img.shape[0]}")
    if a.video:
        res = coefficient_video(face, seqs, a.video, audio=beat2_paths(root, r["id"])["audio"], phones=r["phones"], rig=rig, progress=True)
        print(json.dumps(res))

if __name__ == "__main__":
    main()
