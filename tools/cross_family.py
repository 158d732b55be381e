"""Issue 27's held-out family protocol: actors trained on some synthesiser families (voices) of the synthetic corpus,
scored on every test family, the held-out one included — the train-family × test-family table.

    python tools/cross_family.py extend --data D --split test --last-sentence 28     # more held-out sentences (optional)
    python tools/cross_family.py lipreader --data D --out D/lipreader.pt              # the evaluation lip-reader (GT meshes)
    python tools/cross_family.py table --data D --ckpt sft=CK/sft_s0/best.pt [--ckpt rl=...] --split val \\
        --lip-reader D/lipreader.pt --out runs/cf/val_s0                              # validation: choose recipes here
    python tools/cross_family.py table ... --split test --config docs/results/cross_family_prereg.yaml  # once per seed

Training keeps the held-out voice out of the train and val splits and the one-hot (`speechface train
dataset.holdout=[cmu_us_slt_arctic_hts]`); each checkpoint's config says what it held out, and the table reads it.
Rows: per checkpoint, each test group (each family; a family with a held-out voice split into its voices), the pooled
in-family and held-out speakers, and the ground truth and static template on the same utterances. Columns, each with
a 95 % percentile bootstrap interval over utterances: LVE (mesh), closure F1 / false closures / lip-read accuracy
(the perceptual suite against GT mesh and phones, `speechface.evaluation.perceptual`) and the GT-free phone measures
(closure recall, false closures: `speechface eval-phones`). Predictions are in the style-independent condition (the
mean of the training one-hots), one per utterance: the unit the bootstrap resamples.

A test-split table needs the pre-registration (`--config`, `status: final`, committed before the run) or `--pilot`,
which labels every output as a pilot. With `--baseline NAME`, `criteria.csv` adds the issue's checks: each model's
held-out / in-family closure F1 (independent bootstrap of the two groups) and every other model − baseline on the
held-out speakers (paired bootstrap, the same utterances).
"""
import argparse, sys, time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

ALPHA = 0.05
PERCEPTUAL = ("closure F1", "false closures", "lip-read acc")        # perceptual_table columns kept (each with "<name> CI")
PHONES = {"closure recall": "phone closure recall", "false closures": "phone false closures"}   # phone_table row -> column


def checkpoint_holdout(ckpt: Path) -> list:
    "The voices a `speechface train` (or RL) checkpoint held out (`dataset.holdout` of its config; [] when none)."
    from speechface.core import load_checkpoint
    ck = load_checkpoint(ckpt, "cpu")
    return list((((ck.get("config") or {}).get("dataset")) or {}).get("holdout") or [])


def test_groups(root: Path, split: str, holdout: list) -> dict:
    "group name -> voices/families it selects: each family of the split; a family with a held-out voice, per voice."
    from speechface.data.dataset import corpus_voices, resolve_spec
    table = corpus_voices(root)
    subjects = resolve_spec(root).splits[split][0]
    fams = sorted({table[s][0] for s in subjects if s in table})
    out = {}
    for f in fams:
        vs = sorted({table[s][1] for s in subjects if table.get(s, ("", ""))[0] == f})
        if f in holdout or not set(vs) & set(holdout): out[f] = [f]
        else: out.update({v: [v] for v in vs})
    return out


def training_voices(root: Path, holdout: list) -> str:
    "What the train split holds after `holdout`: each whole family by name, a family with a held-out voice by its kept voices."
    from speechface.data.dataset import corpus_voices, resolve_spec
    table = corpus_voices(root)
    train = [table[s] for s in resolve_spec(root).splits["train"][0] if s in table]
    out = []
    for f in sorted({f for f, _ in train}):
        vs = sorted({v for g, v in train if g == f})
        kept = [v for v in vs if f not in holdout and v not in holdout]
        if kept == vs: out.append(f)
        elif kept: out.append(f"{f} ({', '.join(kept)})")
    return " + ".join(out)


@torch.no_grad()
def predict(ckpt: Path, root: Path, split: str, holdout: list) -> dict:
    "stem -> (T, 3V) prediction in the style-independent condition, for every utterance of the split."
    from speechface.data.dataset import FaceFormerDataset
    from speechface.models.actor import load_actor, predict_mean_style
    model = load_actor(ckpt, "cpu")
    ds = FaceFormerDataset(root, split, with_mel=False, style="independent", holdout=holdout)
    return {it.stem: predict_mean_style(model, ds[i]).astype(np.float64) for i, it in enumerate(ds.items)}


def lve_units(ds, preds: list, lips) -> list:
    "Per utterance (sum, frames) of the per-frame lip max squared error: LVE pools frames, the bootstrap resamples utterances."
    from speechface.data.dataset import check_vertices
    from speechface.metrics.mesh import lip_max_sq_error
    out = []
    for it, p in zip(ds.items, preds):
        e = lip_max_sq_error(p, np.asarray(check_vertices(it, ds.spec, ds.n_vertices), np.float64), lips)   # (T,)
        out.append((float(e.sum()), len(e)))
    return out


def _lve(units: list) -> float: return sum(s for s, _ in units) / max(sum(n for _, n in units), 1)


def phone_units(ds, preds: list, regions: dict) -> list:
    "`speechface eval-phones`' per-utterance events of the predictions: lip gap against the phones, no GT mesh."
    from speechface.data.textgrid import textgrid_folder
    from speechface.evaluation.phones import eval_phones
    tg = textgrid_folder(ds.root)
    files = [(it.stem, it.wav, tg / f"{it.stem}.TextGrid") for it in ds.items]
    by_stem = dict(zip([it.stem for it in ds.items], preds))
    return eval_phones(files, lambda stem, wav: by_stem[stem], ds.spec.fps, regions)[1]


def score_group(ds, methods: dict, reader, n_boot: int) -> tuple[pd.DataFrame, dict]:
    "Per method the table row (value and CI of every column) and its units (for paired differences)."
    from speechface.data.mesh import load_regions
    from speechface.evaluation.perceptual import perceptual_table
    from speechface.evaluation.phones import phone_table
    from speechface.metrics.perceptual import bootstrap_ci
    regions = load_regions(ds.root / ds.spec.masks, ds.n_vertices)
    tab, units = perceptual_table(ds, methods, reader, n_boot=n_boot, alpha=ALPHA)
    rows = {}
    for name, preds in methods.items():
        lu = lve_units(ds, preds, regions["lips"])
        est, lo, hi = bootstrap_ci(_lve, lu, n_boot, ALPHA)
        row = {"utterances": len(ds.items), "LVE (×1e-5)": est / 1e-5, "LVE (×1e-5) CI": (lo / 1e-5, hi / 1e-5)}
        for k in PERCEPTUAL:
            if k in tab.columns: row[k], row[f"{k} CI"] = tab.loc[name, k], tab.loc[name, f"{k} CI"]
        pt = phone_table(phone_units(ds, preds, regions), n_boot, alpha=ALPHA)
        for k, col in PHONES.items(): row[col], row[f"{col} CI"] = pt.loc[k, "value"], (pt.loc[k, "CI low"], pt.loc[k, "CI high"])
        rows[name] = row
    return pd.DataFrame.from_dict(rows, orient="index"), units


def cross_family_table(root: Path, split: str, ckpts: dict, reader=None, n_boot: int = 1000) -> tuple[pd.DataFrame, dict]:
    "The train-family × test-family table of checkpoints (name -> best.pt) on a split, and per (model, group) the units."
    from speechface.data.dataset import FaceFormerDataset, corpus_voices, resolve_spec
    from speechface.evaluation.baselines import ground_truth, baseline_predictions
    table = corpus_voices(root)
    if not table:
        sys.exit(f"{root}: names no speaker voices; the cross-family table needs the synthetic corpus (speechface synth --voices ...)")
    rows, all_units = [], {}
    for name, ckpt in ckpts.items():
        held = checkpoint_holdout(ckpt)
        trained_on = training_voices(root, held)
        preds = predict(ckpt, root, split, held)
        groups = {**test_groups(root, split, held)}
        in_fam = sorted({v for s in resolve_spec(root).splits[split][0] if s in table and not set(table[s]) & set(held)
                         for v in [table[s][1]]})
        if held: groups.update({"in-family (pooled)": in_fam, "held out (pooled)": list(held)})
        for g, voices in groups.items():
            if not voices: continue
            if split != "test" and set(voices) & set(held): continue      # validation never sees the held-out voice
            ds = FaceFormerDataset(root, split, with_mel=False, style="independent", holdout=held, voices=voices)
            gts = ground_truth(ds)
            methods = {name: [preds[it.stem] for it in ds.items], "ground truth": gts,
                       "static template": baseline_predictions(ds, gts)["static template"]}
            tab, units = score_group(ds, methods, reader, n_boot)
            all_units[(name, g)] = units
            for m, r in tab.iterrows():
                rows.append({"model": name, "trained on": trained_on, "held out": "+".join(held) or "-", "test group": g,
                             "group held out": bool(set(voices) & set(held)) and g != "in-family (pooled)", "method": m, **r.to_dict()})
    return pd.DataFrame(rows), all_units


def criteria(tab: pd.DataFrame, units: dict, baseline: str, n_boot: int) -> pd.DataFrame:
    "The issue's checks: held-out / in-family closure F1 per model, and model − baseline closure F1 on the held-out speakers."
    from speechface.evaluation.perceptual import paired_differences, perceptual_summary, resample_summaries
    rows = []
    for m in tab["model"].unique():
        key_in, key_out = (m, "in-family (pooled)"), (m, "held out (pooled)")
        if key_in not in units or key_out not in units: continue
        a, b = units[key_in][m], units[key_out][m]
        ba, bb = resample_summaries([a], n_boot, 0)[0], resample_summaries([b], n_boot, 1)[0]   # independent groups
        r = (bb["closure F1"] / ba["closure F1"]).replace([np.inf, -np.inf], np.nan).dropna()
        est = perceptual_summary(b)["closure F1"] / perceptual_summary(a)["closure F1"]
        rows.append({"check": "held-out / in-family closure F1 (issue: SFT ≥ 0.9)", "model": m, "value": est,
                     "CI low": r.quantile(ALPHA / 2) if len(r) else np.nan, "CI high": r.quantile(1 - ALPHA / 2) if len(r) else np.nan})
    for m in tab["model"].unique():                        # paired model − baseline differences on each pooled group
        for g, goal in (("held out (pooled)", " (issue: closure F1 ≥ +0.05, CI above 0)"), ("in-family (pooled)", "")):
            if m == baseline or (baseline, g) not in units or (m, g) not in units: continue
            d = paired_differences(units[(baseline, g)][baseline], units[(m, g)][m], n_boot)
            for k in ("closure F1", "lip-read acc", "false closures"):
                if k in d.index:
                    rows.append({"check": f"{m} − {baseline} {k}, {g.split(' (')[0]}{goal if k == 'closure F1' else ''}",
                                 "model": m, "value": d.loc[k, "difference"], "CI low": d.loc[k, "low"], "CI high": d.loc[k, "high"]})
    return pd.DataFrame(rows)


def markdown(tab: pd.DataFrame) -> str:
    "The table with each CI as '[low, high]' after its value (3 decimals)."
    out = tab[[c for c in tab.columns if not c.endswith(" CI")]].copy()
    for c in out.columns:
        if f"{c} CI" in tab.columns:
            out[c] = [f"{v:.3f} [{lo:.3f}, {hi:.3f}]" for v, (lo, hi) in zip(tab[c], tab[f"{c} CI"])]
    return out.to_markdown(index=False)


def flat(tab: pd.DataFrame) -> pd.DataFrame:
    "The table with each '<c> CI' pair as two plain columns '<c> low', '<c> high' (what the CSV holds)."
    out = tab.copy()
    for c in [c for c in tab.columns if c.endswith(" CI")]:
        at = out.columns.get_loc(c)
        lo, hi = zip(*out.pop(c))
        out.insert(at, c[:-3] + " low", np.asarray(lo, float))
        out.insert(at + 1, c[:-3] + " high", np.asarray(hi, float))
    return out


def read_prereg(path: str) -> dict:
    "The pre-registration: refused while it is a draft (complete it and commit it before any test run)."
    import yaml
    spec = yaml.safe_load(Path(path).read_text())
    if not isinstance(spec, dict) or spec.get("status") != "final":
        sys.exit(f"{path}: status is {spec.get('status') if isinstance(spec, dict) else spec!r}, not 'final': complete the "
                 f"pre-registration (recipes chosen on validation voices), set status: final and commit it before any test run")
    return spec


def report(prefix: str, seeds: list, baseline: str = "sft", model: str = "rl") -> str:
    """The study's summary over seeds from `<prefix>_s<S>_table.csv` / `_criteria.csv`: per seed the issue's checks with
    a verdict each, then every test group × model averaged over the seeds (min–max across seeds in brackets)."""
    rows, tabs = [], []
    for sd in seeds:
        tab, crit = pd.read_csv(f"{prefix}_s{sd}_table.csv"), pd.read_csv(f"{prefix}_s{sd}_criteria.csv")
        tab["seed"] = sd
        tabs.append(tab)
        c = {(r.model, r.check.split(",")[0].split(" (")[0], ("held out" if ", held out" in r.check else "in-family")
              if " − " in r.check else "ratio"): r for r in crit.itertuples()}
        def get(m, name, where):
            return c.get((m, name, where))
        def lve(m, group):
            t = tab[(tab.model == m) & (tab.method == m) & (tab["test group"] == group)]
            return float(t["LVE (×1e-5)"].iloc[0]) if len(t) else np.nan
        ratio = get(baseline, "held-out / in-family closure F1", "ratio")
        d_cf_out = get(model, f"{model} − {baseline} closure F1", "held out")
        d_lr_out = get(model, f"{model} − {baseline} lip-read acc", "held out")
        d_cf_in = get(model, f"{model} − {baseline} closure F1", "in-family")
        d_lr_in = get(model, f"{model} − {baseline} lip-read acc", "in-family")
        lve_out = lve(model, "held out (pooled)") / lve(baseline, "held out (pooled)")
        lve_in = lve(model, "in-family (pooled)") / lve(baseline, "in-family (pooled)")
        fmt = lambda r: f"{r.value:+.3f} [{r._4:+.3f}, {r._5:+.3f}]" if r is not None else "–"
        ok = lambda b: "–" if b is None else "yes" if b else "**no**"       # – : a number the check needs is missing
        need = lambda *rs: None if any(r is None for r in rs) else True
        ratio_s = f"{ratio.value:.3f} [{ratio._4:.3f}, {ratio._5:.3f}]" if ratio is not None else "–"
        rows.append({
            "seed": sd,
            f"{baseline} held-out / in-family closure F1": ratio_s,
            "≥ 0.9": ok(need(ratio) and ratio.value >= 0.9),
            f"{model} − {baseline} closure F1, held out": fmt(d_cf_out),
            "≥ +0.05, CI > 0": ok(need(d_cf_out) and d_cf_out.value >= 0.05 and d_cf_out._4 > 0),
            "lip-read, held out": fmt(d_lr_out),
            "LVE ratio, held out": f"{lve_out:.3f}",
            "lip-read up, LVE ≤ +5 %": ok(need(d_lr_out) and d_lr_out.value > 0 and lve_out <= 1.05),
            "closure F1, in-family": fmt(d_cf_in),
            "lip-read, in-family": fmt(d_lr_in),
            "LVE ratio, in-family": f"{lve_in:.3f}",
            "in-family: no regression beyond CI, LVE ≤ +10 %": ok(need(d_cf_in, d_lr_in) and d_cf_in._5 >= 0 and d_lr_in._5 >= 0
                                                                  and lve_in <= 1.10)})
    per_seed = pd.DataFrame(rows)
    allt = pd.concat(tabs)
    allt = allt[allt.method.isin(allt.model.unique()) | allt.method.isin(["ground truth", "static template"])]
    allt = allt[~((allt.method.isin(["ground truth", "static template"])) & (allt.model != allt.model.iloc[0]))]
    cols = ["LVE (×1e-5)", "closure F1", "false closures", "lip-read acc", "phone closure recall", "phone false closures"]
    g = allt.groupby(["test group", "method"], sort=False)[cols]
    mean, lo, hi = g.mean(), g.min(), g.max()
    out = mean.copy().astype(object)
    for c in cols:
        out[c] = [f"{m:.3f} [{a:.3f}, {b:.3f}]" if a != b else f"{m:.3f}" for m, a, b in zip(mean[c], lo[c], hi[c])]
    return (per_seed.to_markdown(index=False, disable_numparse=True) + "\n\nMean over seeds " + ", ".join(map(str, seeds)) +
            " (min, max across seeds):\n\n" + out.reset_index().to_markdown(index=False))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("stage", choices=["extend", "lipreader", "table", "report"])
    ap.add_argument("--data", required=True, help="the synthetic corpus (speechface synth --voices espeak,festival)")
    ap.add_argument("--split", default="val")
    ap.add_argument("--last-sentence", type=int, default=28, help="extend: the split's sentences become 21..this")
    ap.add_argument("--ckpt", nargs="+", default=[], metavar="NAME=PATH", help="table: checkpoints to score")
    ap.add_argument("--lip-reader", default=None, help="table: a lip-reader checkpoint (lip-read acc column)")
    ap.add_argument("--epochs", type=int, default=40, help="lipreader: passes over the training speakers' GT")
    ap.add_argument("--holdout", nargs="*", default=[], help="lipreader: voices its training also leaves out (default: none, "
                                                             "the same instrument for every training family)")
    ap.add_argument("--config", default=None, help="table on test: the committed pre-registration (status: final)")
    ap.add_argument("--pilot", action="store_true", help="table on test without a pre-registration; outputs are labelled pilot")
    ap.add_argument("--baseline", default=None, help="table: the model the others are paired against (criteria.csv)")
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="report: the seeds of <out>_s<S>_table.csv")
    ap.add_argument("--out", default=None, help="table: output prefix (<out>_table.csv/.md); lipreader: the .pt")
    a = ap.parse_args()
    torch.set_num_threads(1)
    root, t0 = Path(a.data), time.time()
    if a.stage == "extend":
        from speechface.data.synth import extend_split
        print(a.split, extend_split(root, a.split, a.last_sentence, progress=False)["split"][a.split])
    elif a.stage == "report":
        if not a.out: sys.exit("report needs --out PREFIX (the tables are PREFIX_s<S>_table.csv)")
        md = report(a.out, a.seeds, a.baseline or "sft")
        print(md)
        Path(f"{a.out}_report.md").write_text(md + "\n")
    elif a.stage == "lipreader":
        from speechface.core import save_checkpoint
        from speechface.data.dataset import resolve_spec, select_voices
        from speechface.evaluation.perceptual import train_lip_reader
        r = train_lip_reader(root, select_voices(root, resolve_spec(root), a.holdout), epochs=a.epochs, progress=False)
        save_checkpoint(Path(a.out or root / "lipreader.pt"), {**r, "holdout": list(a.holdout)})
        print({k: round(r[k], 3) for k in ("train_acc", "val_gt_acc", "seconds")})
    else:
        if not a.ckpt: sys.exit("table needs --ckpt NAME=PATH (one or more)")
        ckpts = dict(c.split("=", 1) if "=" in c else (Path(c).parent.name, c) for c in a.ckpt)
        ckpts = {k: Path(v) for k, v in ckpts.items()}
        label = ""
        if a.split == "test":
            if a.config:
                spec = read_prereg(a.config)
                for n, c in ckpts.items():
                    if sorted(checkpoint_holdout(c)) != sorted(spec["design"]["holdout"]):
                        sys.exit(f"{c} held out {checkpoint_holdout(c)}, the pre-registration {spec['design']['holdout']}")
            elif a.pilot: label = "pilot"
            else: sys.exit("a test-split table needs --config (the committed pre-registration) or --pilot (labelled a pilot)")
        reader = None
        if a.lip_reader:
            from speechface.core import load_checkpoint
            reader = load_checkpoint(a.lip_reader)
        tab, units = cross_family_table(root, a.split, ckpts, reader, a.n_boot)
        if label: tab.insert(0, "run", label)
        md = markdown(tab)
        print(md)
        crit = criteria(tab, units, a.baseline, a.n_boot) if a.baseline else None
        if crit is not None and len(crit): print(crit.round(4).to_markdown(index=False))
        if a.out:
            out = Path(a.out)
            out.parent.mkdir(parents=True, exist_ok=True)
            flat(tab).to_csv(f"{out}_table.csv", index=False)
            Path(f"{out}_table.md").write_text(md + "\n")
            if crit is not None: crit.to_csv(f"{out}_criteria.csv", index=False)
            print(f"wrote {out}_table.csv, {out}_table.md" + (f", {out}_criteria.csv" if crit is not None else ""))
    print(f"{a.stage}: {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
