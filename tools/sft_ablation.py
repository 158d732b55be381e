"""The SFT recipe ablation of the tutorial (docs/results/small_sft_ablation.csv): several trained runs on one corpus,
each scored on val and test (average over the 8 training styles, FaceFormer's protocol), next to the static template.

    python tools/sft_ablation.py --root data/synth_small --out-dir checkpoints \
        --run "lr 1e-3=abl_a" --run "lr 4e-3=abl_d" --csv docs/results/small_sft_ablation.csv

A run is `label=run_name` (a folder of --out-dir written by `speechface train`). The recipe of each run is read back
from its config.json (lr, phone_weight, epochs, max_minutes), the training time from its metrics.csv.
"""
import argparse, json
from pathlib import Path
import pandas as pd


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", required=True)
    ap.add_argument("--out-dir", required=True)
    ap.add_argument("--run", action="append", required=True, help="label=run_name; repeat")
    ap.add_argument("--csv", required=True)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--curves", help="also write every run's validation curve (recipe, epoch, val_lve) to this CSV")
    a = ap.parse_args()
    import torch
    torch.set_num_threads(a.threads)
    from speechface.evaluation.baselines import baseline_table
    from speechface.evaluation.evaluate import style_average
    from speechface.train.settings import load_config
    from speechface.inference.animate import run_test
    base = baseline_table(a.root, splits=("val", "test"), style_oracle=False).reset_index()
    static = base[base["baseline"] == "static template"].set_index("split")["LVE (×1e-5)"]
    rows, curves = [], []
    for spec in a.run:
        if "=" not in spec: raise SystemExit(f"--run {spec!r}: expected label=run_name")
        label, run = spec.rsplit("=", 1)      # the label may contain "=", the run name not
        run_dir = Path(a.out_dir) / run
        for f in ("config.json", "metrics.csv", "best.pt"):
            if not (run_dir / f).is_file(): raise SystemExit(f"{run_dir / f} missing: train the run first")
        cfg_j = json.loads((run_dir / "config.json").read_text())
        t = cfg_j["trainer"]
        hist = pd.read_csv(run_dir / "metrics.csv")
        best_epoch = int(hist.loc[hist["val_lve"].idxmin(), "epoch"])
        curves.append(hist.dropna(subset=["val_lve"])[["epoch", "val_lve"]].assign(recipe=label))
        row = {"recipe": label, "run": run, "lr": t["lr"], "phone_weight": t.get("phone_weight", 0.0),
               "epochs run": len(hist), "train min": hist["epoch_s"].sum() / 60, "best epoch": best_epoch}
        cfg = load_config([f"dataset.root={a.root}", f"out_dir={a.out_dir}", f"run={run}"])
        for split in ("val", "test"):
            tab, _, _ = run_test(cfg, split, progress=False)
            avg = style_average(tab)
            row[f"{split} LVE"] = avg["LVE (×1e-5)"]
            row[f"{split} % static"] = 100 * avg["LVE (×1e-5)"] / static[split]
            if split == "test":
                row["test closure"] = avg["closure acc"]
                row["test opening corr"] = avg["opening corr"]
        rows.append(row)
        print(pd.DataFrame([row]).round(3).to_string(index=False), flush=True)
    out = pd.DataFrame(rows)
    out.to_csv(a.csv, index=False)
    if a.curves: pd.concat(curves, ignore_index=True)[["recipe", "epoch", "val_lve"]].to_csv(a.curves, index=False)
    print(out.round(3).to_markdown(index=False))


if __name__ == "__main__":
    main()
