"""Write docs/results/dyadic_frame.png: one frame of speaker | listener on the procedural heads, from the tiny dyadic corpus.

Usage: python tools/dyadic_frame.py [--out docs/results/dyadic_frame.png] [--sample 0] [--size 256]
The frame is the one where both people smile most (validation sample --sample, mirrored order). Deterministic:
the corpus is `cached_dyadic_corpus("tiny", seed=0)` and the heads `dyadic_heads(2, seed=0)`.
"""
import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from speechface.data.dyadic import cached_dyadic_corpus, EXPRESSION_NAMES
from speechface.data.react import REACTDataset
from speechface.viz.dyadic import dyadic_frames

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "docs/results/dyadic_frame.png"))
    p.add_argument("--sample", type=int, default=0, help="validation sample (mirrored order)")
    p.add_argument("--size", type=int, default=256, help="pixels per face panel")
    a = p.parse_args()
    root = cached_dyadic_corpus("tiny")
    item = REACTDataset(root, "val", ("emotion", "3dmm"), n_frames=None)[a.sample]
    spk, lis = item["speaker_3dmm"].numpy(), item["listener_3dmm"].numpy()
    names = (f"speaker {item['speaker']}", f"listener {item['listener']}")
    emos = {names[0]: item["speaker_emotion"].numpy(), names[1]: item["listener_emotion"].numpy()}
    smile = lambda c: c[:, [EXPRESSION_NAMES.index("mouthSmileLeft"), EXPRESSION_NAMES.index("mouthSmileRight")]].mean(1)
    t = int(np.minimum(smile(spk), smile(lis)).argmax())                  # both smile: one answering the other
    img = next(dyadic_frames(spk, lis, emotions=emos, names=names,
                             size=a.size, frames=range(t, t + 1)))
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(a.out, optimize=True)
    print(f"{a.out}: frame {t} ({t / 25:.2f} s) of val sample {a.sample}, {img.shape[1]}x{img.shape[0]}")

if __name__ == "__main__":
    main()
