"""A frame of `speechface demo`'s comparison video chosen by a stated rule (the bilabial where SFT's lips stay widest apart),
and how many of the video's /p b m/ segments each method closes:

    python tools/demo_frame.py demo_out docs/results/comparison_frame.png      # also writes comparison_frame.json
"""
import sys, json, numpy as np, imageio.v3 as iio
from pathlib import Path
from speechface.core import load_checkpoint
from speechface.data.dataset import FaceFormerDataset
from speechface.data.mesh import load_regions, inner_lip_distance
from speechface.data.textgrid import read_textgrid
from speechface.metrics.perceptual import frame_window, BILABIALS, _phone
from speechface.pipeline import video_items
from speechface.train.supervised import load_actor, predict_conditions, style_conditions
run = Path(sys.argv[1]); root = run / "data"; out = Path(sys.argv[2])
ds = FaceFormerDataset(root, "test", with_mel=False, style="independent"); reg = load_regions(root / "regions.pkl")
actors = {n: load_actor(load_checkpoint(run / "checkpoints" / n.lower() / "best.pt")).eval() for n in ("SFT", "RL")}
gap = lambda v: inner_lip_distance(v, reg["inner_lip_upper"], reg["inner_lip_lower"])
rows, off = [], 0
for i in video_items(ds, 18.0):
    it = ds[i]; T = len(it["vertice"]); dg = gap(it["vertice"]); thr = 0.2 * dg.mean()
    dp = {n: gap(predict_conditions(a, it, "cpu", style_conditions(a.cfg.n_subjects, mean=True))[0].numpy()[:T]) for n, a in actors.items()}
    for s, e, lab in read_textgrid(root / "textgrids" / f"{it['name']}.TextGrid")["phones"]:
        if _phone(lab) not in BILABIALS: continue
        a, b = frame_window(s, e, 30, T, 1)
        rows.append({"frame": off + a + int(np.argmin(dg[a:b + 1])), "utt": it["name"], "phone": lab,
                     **{f"{n} closed": bool(d[a:b + 1].min() < thr) for n, d in [("GT", dg), *dp.items()]},
                     "SFT min gap / thr": float(dp["SFT"][a:b + 1].min() / thr), "RL min gap / thr": float(dp["RL"][a:b + 1].min() / thr)})
    off += T
import pandas as pd
df = pd.DataFrame(rows); print(df[[c for c in df if c.endswith("closed")]].sum().to_dict(), "of", len(df))
pick = df.loc[df["SFT min gap / thr"].idxmax()]; print(pick.to_dict())
for k, fr in enumerate(iio.imiter(run / "comparison.mp4")):
    if k == int(pick["frame"]): iio.imwrite(out, fr); break
json.dump({"bilabials": len(df), **{k: int(v) for k, v in df[[c for c in df if c.endswith("closed")]].sum().items()},
           "frame": int(pick["frame"]), "utterance": pick["utt"], "phone": pick["phone"],
           "rule": "the bilabial of the video where SFT's lip gap stays widest (its minimum relative to the closure threshold)"},
          open(out.with_suffix(".json"), "w"), indent=1)
