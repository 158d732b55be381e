"""Does the reward model value lip closure? Patch an actor's predictions with the ground truth only inside the /p b m/
segments (closures restored, everything else the actor's) and score both with the reward model and the evaluation
expert: a reward that is blind to closure cannot teach RL to close the lips.

    python tools/reward_probe.py --root data/synth_small --actor checkpoints/faceformer_synthetic/best.pt \
        --sync-expert checkpoints/reward/sync_expert.pt --head checkpoints/reward/reward_head.pt --split val
"""
import argparse, json
import numpy as np
import pandas as pd
import torch


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", required=True)
    ap.add_argument("--actor", required=True)
    ap.add_argument("--sync-expert", "--backbone", dest="sync_expert", required=True)
    ap.add_argument("--head", required=True)
    ap.add_argument("--split", default="val")
    ap.add_argument("--csv", default=None)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    from speechface.core import load_checkpoint
    from speechface.data.dataset import FaceFormerDataset
    from speechface.evaluation.baselines import _alignments
    from speechface.metrics.mesh import segment_frames
    from speechface.models.reward import load_sync_expert, load_reward_head, score_sequence, freeze, clip_windows
    from speechface.models.actor import load_actor, predict_mean_style
    actor = load_actor(load_checkpoint(a.actor)).eval()
    bb, head = freeze(load_sync_expert(a.sync_expert)), load_reward_head(a.head).eval()
    ds = FaceFormerDataset(a.root, a.split, with_mel=True, style="independent")
    meta = json.loads((ds.root / "metadata.json").read_text())
    rows = []
    for i in range(len(ds)):
        it = ds[i]
        gt = torch.from_numpy(it["motion"])
        pred = torch.from_numpy(predict_mean_style(actor, it))
        lo, hi = segment_frames(_alignments(ds.root, meta, it["name"]), ds.spec.fps, len(gt), tolerance=0)
        inside = torch.zeros(len(gt), dtype=torch.bool)
        for l, h in zip(lo, hi): inside[l:h + 1] = True
        if not inside.any(): continue
        patched = torch.where(inside[:, None], gt, pred)
        tpl = torch.as_tensor(np.asarray(it["template"], np.float32))[None]
        mel = torch.from_numpy(it["rep_audio_mel"])[None]
        clip_in = clip_windows(inside[None].float(), bb.cfg.clip_len).amax(-1)[0] > 0     # clips touching a closure
        for name, seq in (("actor", pred), ("actor + GT closures", patched), ("ground truth", gt)):
            with torch.no_grad(): s = score_sequence(bb, head, seq[None], mel, template=tpl)
            rows.append({"utt": it["name"], "motion": name, "lip (closure clips)": float(s["lip_score"][0][clip_in].mean()),
                         "real (closure clips)": float(s["real_score"][0][clip_in].mean()),
                         "lip (all)": float(s["lip_score_seq"][0]), "real (all)": float(s["real_score_seq"][0])})
    df = pd.DataFrame(rows)
    tab = df.groupby("motion", sort=False).mean(numeric_only=True)
    wide = df.pivot(index="utt", columns="motion", values="lip (closure clips)")
    tab["closure clips: lip better than actor (fraction of utterances)"] = [
        float((wide[m] > wide["actor"]).mean()) for m in tab.index]
    print(tab.round(3).to_markdown())
    if a.csv: tab.to_csv(a.csv)


if __name__ == "__main__":
    main()
