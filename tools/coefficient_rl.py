"""Issue 18 item 4 (last part): the reward model and RL fine-tuning on BEAT2 face coefficients, end to end, on the small
synthetic BEAT2 corpus, one seed, validation split only.

    python tools/coefficient_rl.py --out runs/coefficient_rl            # every stage; each reuses what --out already holds

Stages: the SFT coefficient actor (`trainer=coefficients`, stochastic), the reward (a `motion='coefficients'` sync expert
and score head with the closure-aware negatives, `load_beat2_sync_data`), the reward's ranking on the validation split
(GT against shifted audio, a static face and each perturbation), the RL runs (`CoefficientRLTask`, the configurations in
RL_CANDIDATES: the first, gentle run and two larger learning rates; `select=last` so the validation split chooses
nothing inside a run), and the validation table:
reward, normalised MSE, expression error, jaw correlation, closure at /p b m/ (`evaluate_coefficients`), closure F1 and
lip-reading accuracy (`speechface.evaluation.coefficients`), each with a 95 % bootstrap interval over recordings.
Writes docs/results/beat2_coefficient_reward_ranking.csv and docs/results/beat2_coefficient_rl_val.csv.
This is a works-end-to-end demonstration: it makes no claim that RL improves the actor (no test split is touched).
"""
import argparse, time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

RESULTS = Path(__file__).resolve().parents[1] / "docs" / "results"
ACTOR = ["trainer.epochs=15", "trainer.batch_size=8", "trainer.lr=3e-3", "trainer.val_every=5", "model.feature_dim=64",
         "model.dropout=0.0", "model.stochastic=true", "dataset.window=45", "dataset.stride=15"]
RL_OVERRIDES = ["trainer.variant=backprop", "trainer.rollout=free", "trainer.kl_weight=1.0", "trainer.lr=2e-5",
                "trainer.epochs=3", "trainer.batch_size=8", "trainer.select=last", "trainer.max_train_items=160"]
RL_CANDIDATES = {                  # name -> (run folder, overrides); all validation-only: select=last, no test split
    "RL": ("rl", RL_OVERRIDES),                                                        # the gentle first run
    "RL lr 3e-4": ("rl_lr3e4", [o.replace("trainer.lr=2e-5", "trainer.lr=3e-4") for o in RL_OVERRIDES]),
    "RL lr 1e-3": ("rl_lr1e3", [o.replace("trainer.lr=2e-5", "trainer.lr=1e-3") for o in RL_OVERRIDES]),
}
REWARD_MODEL = {"d_model": 64, "n_layers": 1, "conv_channels": 8, "embed_dim": 128}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--preset", default="small")
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--minutes", type=float, default=3.0, help="wall-clock budget of each training stage")
    a = ap.parse_args()
    torch.set_num_threads(1)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    from speechface.data.beat2_synth import cached_beat2_corpus, expression_basis, CoefficientFace
    from speechface.data.beat2_motion import BEAT2MotionDataset, neutral_vector
    from speechface.train.settings import load_config
    from speechface.train.coefficients import (train_coefficients, load_coefficient_actor, predict_coefficients, evaluate_coefficients)
    from speechface.train.settings import SyncExpertSettings, RewardHeadSettings
    from speechface.train.reward import (train_sync_expert, train_reward_head, load_beat2_sync_data, PERTURBATIONS, CLOSURE_PERTURBATIONS)
    from speechface.models.reward import load_sync_expert, load_reward_head, reward_file, freeze, score_sequence
    from speechface.train.coefficient_rl import reward_ranking, train_coefficient_rl
    from speechface.evaluation.coefficients import beat2_face_recordings, train_coefficient_lip_reader, coefficient_table
    from speechface.metrics.perceptual import bootstrap_ci
    root = cached_beat2_corpus(a.preset, seed=0)
    base = ["dataset=beat2", f"dataset.root={root}", "dataset.part=face", f"out_dir={out / 'ck'}", f"seed={a.seed}",
            "threads=1", "device=cpu"]
    log = lambda *m: print(f"[{time.time() - t0:6.0f} s]", *m, flush=True)

    sft = out / "ck" / "sft" / "best.pt"                                          # 1. the SFT actor
    if not sft.is_file():
        train_coefficients(load_config(["trainer=coefficients", *base, "run=sft", *ACTOR, f"trainer.max_minutes={a.minutes}"]),
                           progress=False)
    log("actor", sft)
    rw = out / "ck" / "reward"                                                     # 2. the reward
    perts = PERTURBATIONS + CLOSURE_PERTURBATIONS
    if not reward_file(rw / "sync_expert.pt").is_file():
        r = train_sync_expert(root, SyncExpertSettings(region=None, seqs_per_batch=8, lr=3e-3, max_minutes=a.minutes, seed=a.seed,
                                                       model=REWARD_MODEL, out=str(rw / "sync_expert.pt")),
                              load=load_beat2_sync_data, progress=False)
        log("sync expert: best val accuracy", round(r["best_val_acc"], 3))
    if not reward_file(rw / "reward_head.pt").is_file():
        r = train_reward_head(root, RewardHeadSettings(perturbations=perts, max_minutes=a.minutes / 2, seed=a.seed,
                                                       sync_expert=str(rw / "sync_expert.pt"), out=str(rw / "reward_head.pt")),
                              load=load_beat2_sync_data, progress=False)
        log("score head: best val", round(r["best"], 3))
    bb, hd = freeze(load_sync_expert(rw / "sync_expert.pt")), load_reward_head(rw / "reward_head.pt")
    val_seqs = load_beat2_sync_data(root, ("val",))
    rank = reward_ranking(bb, hd, val_seqs, perturbations=perts, seed=a.seed)     # 3. ranking on the validation split
    RESULTS.mkdir(parents=True, exist_ok=True)
    rank.round(4).to_csv(RESULTS / "beat2_coefficient_reward_ranking.csv")
    log("reward ranking (val)\n" + rank.round(3).to_markdown())

    rls = {}                                                                       # 4. the RL runs
    for name, (run, overrides) in RL_CANDIDATES.items():
        rls[name] = out / "ck" / run / "last.pt"
        if not rls[name].is_file():
            train_coefficient_rl(load_config(["trainer=rl", *base, f"run={run}", f"trainer.init_actor={sft}",
                                              f"trainer.sync_expert={rw / 'sync_expert.pt'}", f"trainer.head={rw / 'reward_head.pt'}",
                                              "dataset.window=45", "dataset.stride=15", *overrides]), progress=False)
        log(name, rls[name])

    ds = BEAT2MotionDataset(root, "val", "face")                                   # 5. the validation table
    methods = {"GT": ds.targets, "static (neutral)": {i: np.tile(neutral_vector("face"), (len(ds.targets[i]), 1)) for i in ds.ids}}
    for name, ck in (("SFT", sft), *rls.items()):
        actor, stats, _ = load_coefficient_actor(ck)
        methods[name] = predict_coefficients(actor.eval(), ds, stats)
    table = {}
    for name, pred in methods.items():                                            # reward and normalised MSE per recording
        rew, mse = [], []
        for q in val_seqs:
            p = torch.as_tensor(ds.stats.normalize(pred[q["name"]][: len(q["motion"])]), dtype=torch.float32)
            s = score_sequence(bb, hd.eval(), p[None], q["mel"][None], template=q["template"][None])
            rew.append(float(s["lip_score_seq"][0] + s["real_score_seq"][0]))
            mse.append(float(((p - q["motion"]) ** 2).mean()))
        row = {}
        for k, v in (("reward", rew), ("norm_mse", mse)):
            row[k], row[f"{k}_lo"], row[f"{k}_hi"] = bootstrap_ci(lambda u: float(np.mean(u)), v, a.n_boot)
        table[name] = row
    per, summary = evaluate_coefficients(ds, {k: v for k, v in methods.items() if k != "GT"}, expression_basis(), n_boot=a.n_boot)
    face = CoefficientFace()
    reader = train_coefficient_lip_reader(face, beat2_face_recordings(root, "train"), epochs=40, seed=a.seed)
    recs = beat2_face_recordings(root, "val")
    perc = coefficient_table(face, recs, {k: [methods[k][r["id"]] for r in recs] for k in methods}, reader, n_boot=a.n_boot)
    keep = ["closure F1", "lip-read acc"]
    rows = []
    for name in methods:
        r = {"method": name, "n": len(ds.ids), **table[name]}
        for k in ("expr_mse", "jaw_corr", "closure"):
            for suf in ("", "_lo", "_hi"): r[k + suf] = summary.loc[name, k + suf]
        for k in [c for c in perc.columns if not c.endswith(" CI") and any(c.startswith(x) for x in keep)]:
            r[k] = perc.loc[name, k]
            r[f"{k}_lo"], r[f"{k}_hi"] = perc.loc[name, f"{k} CI"]
        rows.append(r)
    res = pd.DataFrame(rows).set_index("method")
    res.round(4).to_csv(RESULTS / "beat2_coefficient_rl_val.csv")
    log("validation table\n" + res[[c for c in res.columns if not c.endswith(("_lo", "_hi"))]].round(3).to_markdown())


if __name__ == "__main__":
    main()
