"""A frame of `speechface demo`'s comparison video chosen by a stated rule (the bilabial where SFT's lips stay widest
apart), and how many of the video's /p b m/ segments each method closes (`closure_segments`: 20 % of the utterance's
mean GT opening, ±1 frame):

    python tools/demo_frame.py demo_out docs/results/comparison_frame.png      # also writes comparison_frame.json
"""
import json, sys
from pathlib import Path

import imageio.v3 as iio
import numpy as np

from speechface.data.mesh import load_regions, inner_lip_distance
from speechface.metrics.perceptual import closure_segments, frame_window, BILABIALS, _phone
from speechface.pipeline import comparison_sequences

run, out = Path(sys.argv[1]), Path(sys.argv[2])
ck = run / "checkpoints"
c = comparison_sequences(run / "data", ck / "sft" / "best.pt", ck / "rl" / "best.pt")     # what comparison.mp4 shows
fps = c["ds"].spec.fps
reg = load_regions(c["ds"].root / c["ds"].spec.masks)
gap = lambda v: inner_lip_distance(v, reg["inner_lip_upper"], reg["inner_lip_lower"])
closed, n, widest, off = {m: 0 for m in c["seqs"]}, 0, (-np.inf, None, None), 0
for k, (name, phones) in enumerate(zip(c["names"], c["phones"])):
    dg = gap(c["seqs"]["ground truth"][k])
    T = len(dg)
    d = {m: gap(s[k][:T]) for m, s in c["seqs"].items()}
    for m in d:
        pos = closure_segments(d[m], dg, phones, fps).pos_closed
        closed[m] += int(pos.sum())
    n += len(pos)
    thr = 0.2 * dg.mean()
    for s, e, lab in phones:                                   # the same windows as closure_segments (tolerance 1)
        if _phone(lab) not in BILABIALS: continue
        a, b = frame_window(s, e, fps, T, 1)
        r = d["SFT"][a:b + 1].min() / thr
        if r > widest[0]: widest = (r, off + a + int(np.argmin(dg[a:b + 1])), (name, lab))
    off += T
print({"bilabials": n, **closed}, "frame", widest)
for k, fr in enumerate(iio.imiter(run / "comparison.mp4")):
    if k == widest[1]:
        iio.imwrite(out, fr)
        break
json.dump({"bilabials": n, **{f"{'GT' if m == 'ground truth' else m} closed": v for m, v in closed.items()},
           "frame": widest[1], "utterance": widest[2][0], "phone": widest[2][1],
           "rule": "the bilabial of the video where SFT's lip gap stays widest (its minimum relative to the closure threshold)"},
          open(out.with_suffix(".json"), "w"), indent=1)
