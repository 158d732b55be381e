"""The RL comparison of issue 6: static template, ground truth, SFT, the seed's RL loop and each variant, on the
held-out test split, per seed; writes one CSV row per (seed, method) and the per-epoch curves.

    python tools/rl_experiment.py --root data/synth_small --sft 0=ckpt/sft0/best.pt 1=ckpt/sft1/best.pt \
        --sync-expert checkpoints/reward/sync_expert.pt --head checkpoints/reward/reward_head.pt \
        --eval-expert checkpoints/reward/eval_expert.pt --out runs/rl_compare --seeds 0

Run one process per seed (`--seeds 0`, `--seeds 1`) to use two cores; `--merge` joins their CSVs. `--rescore`
re-scores the saved predictions of a finished run with the current metrics (training columns are kept).
"""
import argparse, json, time
from pathlib import Path

import pandas as pd
import torch

# name -> overrides; every variant but the seed's uses free rollouts and the KL anchor (see nbs/44_train.rl.ipynb)
VARIANTS = {
    "seed RL": ["trainer.variant=seed"],
    "per-clip": ["trainer.variant=per_clip", "trainer.rollout=free", "trainer.kl_weight=30"],
    "PPO": ["trainer.variant=ppo", "trainer.rollout=free", "trainer.kl_weight=30", "trainer.ppo_epochs=3"],
    "GRPO": ["trainer.variant=grpo", "trainer.rollout=free", "trainer.kl_weight=30", "trainer.group_size=4", "trainer.batch_size=2"],
    "reward backprop": ["trainer.variant=backprop", "trainer.rollout=free", "trainer.kl_weight=30"],
    "reward backprop (lr 3e-5)": ["trainer.variant=backprop", "trainer.rollout=free", "trainer.kl_weight=30", "trainer.lr=3e-5"],
}

def run_name(method: str) -> str:
    "The run folder of a method: 'reward backprop (lr 3e-5)' -> 'reward_backprop__lr_3e-5_'."
    return "sft" if method == "SFT" else "".join(ch if ch.isalnum() or ch in "-." else "_" for ch in method)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--sft", nargs="+", required=True, metavar="SEED=CKPT", help="SFT checkpoint per seed")
    ap.add_argument("--sync-expert", "--backbone", dest="sync_expert", required=True)
    ap.add_argument("--head", required=True)
    ap.add_argument("--eval-expert", required=True)
    ap.add_argument("--seeds", nargs="+", type=int, default=[0])
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--merge", action="store_true", help="only merge the per-seed CSVs in --out")
    ap.add_argument("--eval-last", action="store_true", help="also score each variant's last epoch (row '<name> (last epoch)')")
    ap.add_argument("--tag", default="", help="suffix of the CSV names (several invocations into one --out)")
    ap.add_argument("--no-sft", action="store_true", help="skip the reference and SFT rows (extra variants for a finished table)")
    ap.add_argument("--rescore", action="store_true", help="re-score saved predictions of --seeds with the current metrics")
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    if a.rescore:
        torch.set_num_threads(a.threads)
        from speechface.evaluation.evaluate import evaluate_results, style_average
        from speechface.pipeline import reference_rows
        for seed in a.seeds:
            old = pd.read_csv(out / f"table_seed{seed}{a.tag}.csv")
            keep = ["best epoch", "rl wall s", "step s", "clips/s"]
            rows = []
            if seed == a.seeds[0] and "ground truth" in set(old.method):
                ref = reference_rows(a.root, a.eval_expert)
                rows += [{"seed": seed, "method": m, **ref.loc[m].to_dict()} for m in ref.index]
            for _, r in old[~old.method.isin(["ground truth", "static template"])].iterrows():
                run = run_name(r.method.replace(" (last epoch)", "")) + ("_last" if r.method.endswith("(last epoch)") else "")
                tab, _ = evaluate_results(out / f"seed{seed}" / run / "styledependant" / "results", a.root, "test",
                                          eval_expert=a.eval_expert)
                rows.append({"seed": seed, "method": r.method, **style_average(tab).to_dict(),
                             **{k: r[k] for k in keep if k in r}})
                print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in rows[-1].items()}), flush=True)
            pd.DataFrame(rows).to_csv(out / f"table_seed{seed}{a.tag}.csv", index=False)
        return
    if a.merge:
        tabs = pd.concat([pd.read_csv(p) for p in sorted(out.glob("table_seed*.csv"))])
        tabs = tabs.drop_duplicates(["seed", "method"], keep="first")            # a method re-run for its last epoch
        order = list(dict.fromkeys(tabs["method"]))                               # methods in first-seen order
        tabs.sort_values(["method", "seed"],
                         key=lambda c: c.map(order.index) if c.name == "method" else c).to_csv(out / "table.csv", index=False)
        curves = pd.concat([pd.read_csv(p) for p in sorted(out.glob("curves_seed*.csv"))])
        curves.drop_duplicates(["seed", "method", "epoch"], keep="first").to_csv(out / "curves.csv", index=False)
        return
    torch.set_num_threads(a.threads)
    from speechface.pipeline import reference_rows
    from speechface.evaluation.evaluate import style_average
    from speechface.train.settings import load_config
    from speechface.inference.animate import run_test
    from speechface.train.rl import train_rl
    sft = dict(s.split("=", 1) for s in a.sft)
    for seed in a.seeds:
        rows, curves = [], []
        if seed == a.seeds[0] and not a.no_sft:
            ref = reference_rows(a.root, a.eval_expert)
            rows += [{"seed": seed, "method": m, **ref.loc[m].to_dict()} for m in ref.index]
        base = [f"dataset.root={a.root}", f"out_dir={out / f'seed{seed}'}", f"seed={seed}", f"threads={a.threads}",
                f"eval_expert={a.eval_expert}"]
        if not a.no_sft:
            tab, _, _ = run_test(load_config(base + ["run=sft"]), "test", ckpt=sft[str(seed)], progress=False)
            rows.append({"seed": seed, "method": "SFT", **style_average(tab).to_dict()})
        for name in a.variants:
            run = run_name(name)
            lr = [] if any(o.startswith("trainer.lr=") for o in VARIANTS[name]) else [f"trainer.lr={a.lr}"]
            cfg = load_config(base + ["trainer=rl", f"run={run}", f"trainer.init_actor={sft[str(seed)]}",
                                      f"trainer.sync_expert={a.sync_expert}", f"trainer.head={a.head}", f"trainer.epochs={a.epochs}",
                                      "trainer.select=reward"] + lr + VARIANTS[name])
            t0 = time.time()
            res = train_rl(cfg, progress=False)
            wall = time.time() - t0
            tab, _, _ = run_test(cfg, "test", progress=False)
            h = pd.DataFrame(res["history"])
            h.insert(0, "method", name)
            h.insert(0, "seed", seed)
            curves.append(h)
            rows.append({"seed": seed, "method": name, **style_average(tab).to_dict(),
                         "best epoch": res["best_epoch"], "rl wall s": wall, "step s": h["step_s"].dropna().mean(),
                         "clips/s": h["clips_per_s"].dropna().mean()})
            if a.eval_last:
                last_cfg = load_config(base + [f"run={run}_last"])
                tab, _, _ = run_test(last_cfg, "test", ckpt=out / f"seed{seed}" / run / "last.pt", progress=False)
                rows.append({"seed": seed, "method": f"{name} (last epoch)", **style_average(tab).to_dict(),
                             "best epoch": a.epochs})
            pd.DataFrame(rows).to_csv(out / f"table_seed{seed}{a.tag}.csv", index=False)
            pd.concat(curves).to_csv(out / f"curves_seed{seed}{a.tag}.csv", index=False)
            print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in rows[-1].items()}), flush=True)

if __name__ == "__main__":
    main()
