"""The SFT table of the tutorial (docs/results/small_sft_table.csv): baselines and a trained actor on val and test.

    python tools/sft_table.py --root data/synth_small --out-dir checkpoints --run sft_small --csv docs/results/small_sft_table.csv
"""
import argparse
import pandas as pd


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", required=True)
    ap.add_argument("--out-dir", required=True)
    ap.add_argument("--run", required=True)
    ap.add_argument("--csv", required=True)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    import torch
    torch.set_num_threads(a.threads)
    from speechface.evaluation.baselines import baseline_table
    from speechface.train.settings import load_config
    from speechface.inference.animate import run_test
    base = baseline_table(a.root, splits=("val", "test")).reset_index()
    base = base[base["baseline"] != "oracle (generator)"].rename(columns={"baseline": "model"}).drop(columns="utterances")
    rows = [base]
    cfg = load_config([f"dataset.root={a.root}", f"out_dir={a.out_dir}", f"run={a.run}"])
    for split in ("val", "test"):
        tab, _, _ = run_test(cfg, split, progress=False)
        t = tab.loc[["average over styles", "mean"]].drop(columns="utterances").reset_index()
        t["model"] = ["SFT (average over styles)", "SFT (mean style)"]
        t["split"] = split
        rows.append(t.drop(columns="condition"))
    out = pd.concat(rows, ignore_index=True)
    static = out[out.model == "static template"].set_index("split")["LVE (×1e-5)"]
    out["LVE / static"] = out["LVE (×1e-5)"] / out["split"].map(static)
    out.to_csv(a.csv, index=False)
    print(out.round(3).to_markdown(index=False))


if __name__ == "__main__":
    main()
