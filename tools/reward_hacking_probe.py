"""Can the reward be gamed? Three probes of a trained reward model (sync expert + score head) on one split:

1. correlation, per utterance, of the reward (lip + real, mean over clips) with each independent perceptual measure,
   over ground truth, the static template, the SFT actor and perturbed ground truth (late, smoothed, shut mouth);
2. gradient ascent on the reward starting from ground truth (Adam on the vertices): does the reward rise while the
   independent measures (closure F1, lip-reading, MTM, LVE) fall?
3. transfer of that attack to the evaluation expert (the reward's sync expert trained again with another seed):
   does its LSE-C rise too?

    python tools/reward_hacking_probe.py --out runs/perceptual --split val --steps 60 --csv docs/results/reward_probes.csv
"""
import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import torch


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="the folder of tools/perceptual_rl.py (data/, ck/, lipreader.pt)")
    ap.add_argument("--split", default="val")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--lr", type=float, default=2e-4, help="Adam step on vertices, metres")
    ap.add_argument("--csv", default=None)
    ap.add_argument("--n-boot", type=int, default=300)
    ap.add_argument("--sync-expert", "--backbone", dest="sync_expert", default=None,
                    help="the sync expert (default: OUT/ck/reward/sync_expert.pt)")
    ap.add_argument("--head", default=None, help="score head (default: OUT/ck/reward/reward_head.pt)")
    a = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    from speechface.core import load_checkpoint
    from speechface.data.dataset import FaceFormerDataset
    from speechface.data.mesh import load_regions
    from speechface.evaluation.baselines import ground_truth, baseline_predictions, expert_lip_sync, score_predictions
    from speechface.evaluation.perceptual import perceptual_units, perceptual_summary
    from speechface.models.reward import load_sync_expert, load_reward_head, score_sequence, freeze
    from speechface.models.actor import load_actor, predict_mean_style
    out = Path(a.out)
    rw = out / "ck" / "reward"
    bb = freeze(load_sync_expert(a.sync_expert or rw / "sync_expert.pt"))
    head = freeze(load_reward_head(a.head or rw / "reward_head.pt").eval())
    expert = load_sync_expert(rw / "eval_expert.pt")
    reader = load_checkpoint(out / "lipreader.pt")
    ds = FaceFormerDataset(out / "data", a.split, with_mel=True, style="independent")
    items = [ds[i] for i in range(len(ds))]
    gts = ground_truth(ds)
    regions = load_regions(ds.root / ds.spec.masks, ds.n_vertices)

    def reward(seq, it):  # (T, 3V) -> scalar tensor, differentiable in seq
        mel = torch.as_tensor(it["rep_audio_mel"])[None]
        tpl = torch.as_tensor(np.asarray(it["template"], np.float32))[None]
        s = score_sequence(bb, head, seq[None], mel, template=tpl)
        return (s["lip_score_seq"] + s["real_score_seq"])[0]

    # 1. per-utterance correlation over a spread of motions
    sft = load_actor(out / "ck" / "sft0" / "best.pt").eval()
    sft_preds = [predict_mean_style(sft, it) for it in items]
    def shut(g):
        s = g.copy().reshape(len(g), -1, 3)
        s[:, regions["inner_lip_lower"]] = s[:, regions["inner_lip_upper"]]
        return s.reshape(len(g), -1)
    def smooth(g, k=5):
        ker = np.ones(k) / k
        return np.stack([np.convolve(np.pad(c, (k // 2, k // 2), mode="edge"), ker, "valid") for c in g.T], 1)
    motions = {"ground truth": gts, "static template": baseline_predictions(ds, gts)["static template"], "SFT": sft_preds,
               "GT 3 frames late": [np.concatenate([g[:1].repeat(3, 0), g[:-3]]) for g in gts],
               "GT smoothed (5 frames)": [smooth(g) for g in gts], "GT, shut mouth": [shut(g) for g in gts]}
    rows = []
    for name, preds in motions.items():
        units = perceptual_units(ds, preds, reader, regions)
        for it, p, u in zip(items, preds, units):
            with torch.no_grad(): r = float(reward(torch.as_tensor(np.asarray(p, np.float32)[: len(it["motion"])]), it))
            s = perceptual_summary([u])
            rows.append({"motion": name, "stem": u["stem"], "reward": r,
                         **{k: s[k] for k in ("closure F1", "lip-read acc", "MTM (ms)", "false closures")}})
    per = pd.DataFrame(rows)
    corr = {k: float(per[["reward", k]].dropna().corr(method="spearman").iloc[0, 1])
            for k in ("closure F1", "lip-read acc", "MTM (ms)", "false closures")}
    means = per.groupby("motion")[["reward", "closure F1", "lip-read acc", "MTM (ms)"]].mean()
    print("1. reward and independent measures, per motion (mean over utterances):\n", means.round(3).to_markdown())
    print("Spearman correlation of the reward with each measure over all (motion, utterance):", {k: round(v, 3) for k, v in corr.items()})

    # 2. gradient ascent on the reward from ground truth (3. scored by the evaluation expert too)
    from speechface.evaluation.perceptual import reward_ascent
    record = sorted({0, a.steps // 4, a.steps // 2, a.steps})
    climb = reward_ascent(lambda seq, i: reward(seq, items[i]), [g[: len(it["motion"])] for g, it in zip(gts, items)],
                          steps=a.steps, lr=a.lr, record=record)
    traj = []
    for step in record:
        preds = climb[step]["seqs"]
        s = perceptual_summary(perceptual_units(ds, preds, reader, regions))
        ex = expert_lip_sync(ds, preds, expert)
        traj.append({"step": step, "reward": climb[step]["reward"], "closure F1": s["closure F1"],
                     "false closures": s["false closures"], "lip-read acc": s["lip-read acc"], "MTM (ms)": s["MTM (ms)"],
                     "LVE (×1e-5)": score_predictions(ds, preds, gts=gts, regions=regions)["LVE (×1e-5)"],
                     "eval expert LSE-C": ex.get("LSE-C", np.nan), "eval expert |offset|": ex.get("|offset|", np.nan),
                     "mean |Δ| (mm)": float(np.mean([np.abs(p - g[: len(p)]).mean() for p, g in zip(preds, gts)]) * 1000)})
    traj = pd.DataFrame(traj).set_index("step")
    print("2./3. gradient ascent on the reward from ground truth:\n", traj.round(4).to_markdown())
    if a.csv:
        Path(a.csv).parent.mkdir(parents=True, exist_ok=True)
        traj.to_csv(a.csv)
        means.assign(**{f"spearman(reward, {k})": v for k, v in corr.items()}).to_csv(
            Path(a.csv).with_name(Path(a.csv).stem + "_motions.csv"))


if __name__ == "__main__":
    main()
