"""ARKit weights and retargeting on a trained model's predictions, not on the generator's own motion.

The notebooks check `export.arkit` and `export.retarget` on the synthetic corpus' ground truth, which the articulation
model made — the same model the ARKit shapes are built from. A trained actor's output is not in that family: this
script measures what the 52 shapes and the retarget keep of it on a corpus' test utterances.

For each utterance the actor predicts the motion (mean style, on its first training face), then
* ARKit: weights by bounded least squares, the motion rebuilt from them; lip-region error as a fraction of the
  prediction's lip motion RMS, closure F1 of the rebuilt motion against the recording's ground truth next to the
  prediction's own F1;
* retarget: onto the procedural head remeshed at 2 500 vertices, shuffled, ×10 and rotated, and back; the map-back
  error as the same fraction, and the target's closure F1 (its lip distance divided by the width ratio).

Usage: python tools/export_check.py --data runs/xfam/data --ckpt runs/xfam/ck/rl_none_s0/best.pt --n 40 \
           --out docs/results/export_model_output.md
"""
import argparse, json, time
from pathlib import Path

import numpy as np
import pandas as pd
import trimesh
from tqdm.auto import tqdm

from speechface.core import load_checkpoint
from speechface.data.head import build_head
from speechface.data.mesh import inner_lip_distance, load_regions
from speechface.data.textgrid import read_textgrid
from speechface.evaluation.phones import checkpoint_motion
from speechface.export.arkit import arkit_basis, solve_arkit_weights, arkit_motion
from speechface.export.retarget import fit_retarget, transfer
from speechface.metrics.perceptual import closure_segments, closure_f1


def lip_fraction(a, b, ref, lips):
    "RMS over frames and lip vertices of a − b, as a fraction of the RMS of b − ref (the lip motion)."
    d = lambda x, y: np.sqrt(((x[:, lips] - y[:, lips]) ** 2).sum(-1).mean())
    return float(d(a, b) / d(b, ref[None]))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="a synthetic corpus (its test split is used)")
    ap.add_argument("--ckpt", required=True, help="a speechface actor checkpoint of that corpus' topology")
    ap.add_argument("--n", type=int, default=40, help="test utterances (spread over the test speakers)")
    ap.add_argument("--out", default=None, help="write the tables here (markdown)")
    a = ap.parse_args(argv)
    data = Path(a.data)
    meta = json.loads((data / "metadata.json").read_text())
    test = meta["split"]["test"]
    stems = sorted(s for s in meta["texts"] if s.rsplit("_", 1)[0] in test["subjects"]
                   and test["sentences"][0] <= int(s[-2:]) <= test["sentences"][1])
    by_subject = {}
    for s in stems: by_subject.setdefault(s.rsplit("_", 1)[0], []).append(s)
    pick = [s for i in range(max(map(len, by_subject.values()))) for v in by_subject.values() if i < len(v) for s in [v[i]]][:a.n]
    fps, _, motion = checkpoint_motion(a.ckpt)
    ck = load_checkpoint(a.ckpt)
    tpl = np.asarray(ck["templates"][ck["train_subjects"][0]], np.float64).reshape(-1, 3)
    faces = np.asarray(ck["faces"])
    reg = load_regions(data / "regions.pkl")
    lips, up, lo = reg["lips"], reg["inner_lip_upper"], reg["inner_lip_lower"]
    t0 = time.time()
    basis = arkit_basis(tpl)
    head = build_head(2500)
    rng = np.random.default_rng(0)
    perm = rng.permutation(head.n_vertices)
    R = trimesh.transformations.random_rotation_matrix(rng.random(3))[:3, :3]
    tv = ((head.vertices.astype(np.float64) * 10) @ R.T + rng.normal(size=3))[perm]
    tf = np.argsort(perm)[head.faces]
    there, back = fit_retarget(tpl, faces, tv, tf), fit_retarget(tv, tf, tpl, faces)
    fit_s = time.time() - t0
    rows, segs = [], {"prediction": [], "ARKit rebuilt": [], "retargeted": []}
    solve_s = 0.0
    for stem in tqdm(pick, desc="utterances"):
        pred = motion(stem, data / "wav" / f"{stem}.wav").reshape(-1, len(tpl), 3)                   # (T, V, 3)
        gt = np.load(data / "vertices_npy" / f"{stem}.npy")
        phones = read_textgrid(data / meta["textgrids"] / f"{stem}.TextGrid")["phones"]
        d_gt = inner_lip_distance(gt, up, lo)
        T = min(len(pred), len(gt))
        pred, d_gt = pred[:T], d_gt[:T]
        s0 = time.time()
        w = solve_arkit_weights(pred, tpl, basis)
        solve_s += time.time() - s0
        rebuilt = arkit_motion(w, tpl, basis)
        moved = transfer(there, pred, tpl, tv)
        home = transfer(back, moved, tv, tpl)
        d_t = inner_lip_distance(moved.reshape(T, -1), *there.target.lip_pairs()) * there.source.width / there.target.width
        curves = {"prediction": inner_lip_distance(pred.reshape(T, -1), up, lo),
                  "ARKit rebuilt": inner_lip_distance(np.asarray(rebuilt).reshape(T, -1), up, lo), "retargeted": d_t}
        for k, d in curves.items(): segs[k].append(closure_segments(d, d_gt, phones, fps))
        rows.append({"utterance": stem, "frames": T, "ARKit lip error": lip_fraction(np.asarray(rebuilt), pred, tpl, lips),
                     "retarget map-back error": lip_fraction(home, pred, tpl, lips)})
    per = pd.DataFrame(rows)
    f1 = {k: closure_f1(v) for k, v in segs.items()}
    summary = pd.DataFrame([
        {"measure": "lip-region error / lip motion RMS (median, max)", "ARKit (52 weights)":
         f"{per['ARKit lip error'].median():.3f}, {per['ARKit lip error'].max():.3f}",
         "retarget (there and back)": f"{per['retarget map-back error'].median():.3f}, {per['retarget map-back error'].max():.3f}"},
        {"measure": "closure F1 vs the recording (prediction: %.3f)" % f1["prediction"].f1,
         "ARKit (52 weights)": f"{f1['ARKit rebuilt'].f1:.3f} (ratio {f1['ARKit rebuilt'].f1 / f1['prediction'].f1:.3f})",
         "retarget (there and back)": f"{f1['retargeted'].f1:.3f} on the target (ratio {f1['retargeted'].f1 / f1['prediction'].f1:.3f})"},
        {"measure": "false-closure rate (prediction: %.3f)" % f1["prediction"].false_closure_rate,
         "ARKit (52 weights)": f"{f1['ARKit rebuilt'].false_closure_rate:.3f}",
         "retarget (there and back)": f"{f1['retargeted'].false_closure_rate:.3f}"},
    ])
    frames = int(per["frames"].sum())
    text = (f"# ARKit weights and retargeting on a trained actor's output\n\n"
            f"`python tools/export_check.py --data {a.data} --ckpt {a.ckpt} --n {a.n}` — {len(per)} test utterances "
            f"({frames} frames) of {', '.join(sorted(by_subject))}; the actor predicts in the mean style on "
            f"`{ck['train_subjects'][0]}`'s face; the target is the procedural head remeshed at 2 500 vertices, shuffled, "
            f"×10 and rotated. Fits (ARKit basis, retarget both ways): {fit_s:.1f} s; ARKit solve "
            f"{1000 * solve_s / frames:.1f} ms a frame.\n\n" + summary.to_markdown(index=False) + "\n\nPer utterance:\n\n"
            + per.round(4).to_markdown(index=False) + "\n")
    print(summary.to_markdown(index=False))
    if a.out:
        Path(a.out).write_text(text)
        print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
