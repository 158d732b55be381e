"""Listener-reaction generation on the synthetic dyadic corpus: both models, two seeds, the REACT2024 metric table.

Stages (run from the repository root; every stage is resumable and writes under --out, default runs/react):
  python tools/react_experiment.py corpus                       # the `full` dyadic preset: 30-s clips (751 frames)
  python tools/react_experiment.py train --model fsq --seed 0   # speechface train trainer=reaction_fsq ... (and vae)
                                                                # --name fsq3: runs/fsq3_s0 (a later attempt's runs)
  python tools/react_experiment.py eval --split val             # every trained run: 10 reactions per speaker, the table
  python tools/react_experiment.py tokenizers                   # can the face tokenizer represent the listeners? (val)
  python tools/react_experiment.py temperatures --only v6 --seed 0   # one VAE run's latent spread swept (val)
  python tools/react_experiment.py eval --split test --config docs/results/react_prereg.yaml
Training overrides come from --config (a YAML with `fsq:` and `vae:` lists of `speechface train` overrides, and an
optional `generate:` mapping per model of generation settings: checkpoint best|last, top_k, temperature, and for the
VAE calibrate: variance|quantile (true = variance), its post-filter fitted on the training split), so the
configuration evaluated on test is the file committed before the test run (its git history is the pre-registration).
`eval` writes docs/results/react_<split>_table.csv (one row per method and seed plus the naive baselines; FRC/FRD
with 95 % bootstrap intervals over speaker samples), react_<split>_rules.csv (per listener rule of the corpus: hit
rate, median lag, lag error against each listener's own lag), react_<split>_dims.csv (FRC per emotion dimension),
react_<split>_criteria.csv (issue 30's bars per run: FRC interval above Mime, FRSyn (skip) within 3 frames of GT,
FRVar / FRDiv within the real listeners' range, smile lag error within 0.2 s), react_<split>_latency.csv (online
manager, one CPU thread), and
a frame of speaker | real listener | generated listeners (docs/results/react_frame.png).
"""
import argparse, json, subprocess, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results"
MODELS = {"fsq": "reaction_fsq", "vae": "reaction_vae"}


def load_overrides(config: Path | None, model: str) -> list[str]:
    "The `speechface train` overrides of one model from the experiment's YAML (none without a file)."
    if config is None: return []
    import yaml
    cfg = yaml.safe_load(config.read_text()) or {}
    return [str(o) for o in cfg.get(model, [])]


def corpus(out: Path, workers: int) -> Path:
    "The full dyadic corpus under out/data (generated once; its metadata names preset and seed)."
    data = out / "data"
    if not (data / "metadata.json").is_file():
        from speechface.data.dyadic import generate_dyadic_corpus
        generate_dyadic_corpus(data, "full", 0, workers=workers, progress=True)
    return data


def train(out: Path, model: str, seed: int, config: Path | None, threads: int, extra: list[str], name: str | None = None):
    data = corpus(out, 2)
    argv = [sys.executable, "-m", "speechface.cli", "train", f"trainer={MODELS[model]}", "dataset=dyadic",
            f"dataset.root={data}", f"out_dir={out / 'runs'}", f"run={name or model}_s{seed}", f"seed={seed}",
            f"threads={threads}", *load_overrides(config, model), *extra]
    print(" ".join(argv[3:]), flush=True)
    t0 = time.time()
    subprocess.run(argv, check=True)
    print(f"{name or model} seed {seed}: {time.time() - t0:.0f} s", flush=True)


def split_data(data: Path, split: str):
    "The scoring view of one split (`react_split`: emotions, appropriateness) and its mirrored REACTDataset, clips of d.n_frames."
    from speechface.data.react import REACTDataset
    from speechface.data.check import react_clip_frames
    from speechface.evaluation.react import react_split
    d = react_split(data, split)
    return d, REACTDataset(data, split, mirror=True, n_frames=react_clip_frames(data), clip_length=d.n_frames)


def latency(run: Path, rm, ds, sample: int = 0) -> dict:
    """Per-window latency of the online manager on one thread: one speaker sample streamed window by window (FSQ: the
    speaker window tokenised, one listener window sampled and decoded; VAE: one window encoded and decoded). With
    training-set audio statistics (trainer.audio_norm=train) the window's log-mel features are computed inside the timed
    step from its own audio (plus one frame before it); per-utterance CMVN needs the whole clip, so they are precomputed."""
    import numpy as np, torch
    from speechface.models.reaction_online import OnlineReactionManager
    from speechface.train.reaction import reaction_items, vae_items
    fsq = rm.kind == "reaction_fsq"
    extra = ("openface",) if not fsq and rm.model.cfg.face == "openface" and "openface" not in ds.modalities else ()
    it = reaction_items(ds.view([sample], modalities=(*ds.modalities, *extra)), rm.audio)[0]
    if not fsq: it = vae_items([it], rm.model.cfg.face)[0]
    x = it["speaker_3dmm"][None] if fsq else it["speaker_face"][None]
    a = it["speaker_audio"][None]
    live = rm.audio.kind == "mel" and rm.audio.stats is not None
    if live:
        from speechface.train.reaction import reaction_audio_features
        wave, hop = ds.view([sample])[0]["speaker_audio"], ds.sr // 25                   # samples per frame
        ctx = hop                                                                          # one frame of audio before the window
    m = OnlineReactionManager(rm.model, seed=0, detokenizer=rm.tokenizer.decode if fsq else None)
    W, T, times = m.window, x.shape[1], []
    with torch.no_grad():
        for rep in range(2):                                                     # the first pass warms up
            m.reset()
            times = []
            for t0 in range(0, T - W + 1, W):
                s = time.perf_counter()
                if live:
                    w = wave[max(0, t0 * hop - ctx):(t0 + W) * hop]
                    aw = reaction_audio_features(w, ds.sr, W + (1 if t0 else 0), rm.audio)[-W:][None]
                else: aw = a[:, t0:t0 + W]
                xs = rm.tokenizer.encode(x[:, t0:t0 + W]) if fsq else x[:, t0:t0 + W]
                m.push(xs, aw)
                times.append(time.perf_counter() - s)
    ms = 1000 * np.array(times)
    return {"run": run.name, "window_frames": W, "window_ms": 1000 * W / 25, "median_ms": float(np.median(ms)),
            "p95_ms": float(np.percentile(ms, 95)), "max_ms": float(ms.max()), "windows": len(ms),
            "median_fraction_of_window": float(np.median(ms) / (1000 * W / 25)), "audio_in_loop": live,
            "parameters": sum(p.numel() for p in rm.model.parameters())}


def frame(out: Path, split: str, sample: int = 0, size: int = 224):
    """docs/results/react_frame.png: speaker | real listener | the seed-0 FSQ and VAE listeners of one test sample, at
    the frame where speaker and real listener both smile most (the listener answering), with the AU12 / valence chart."""
    import numpy as np
    from PIL import Image
    from speechface.data.dyadic import EXPRESSION_NAMES
    from speechface.train.reaction import load_reaction_model, generate_reactions
    from speechface.viz.dyadic import dyadic_frames
    data = out / "data"
    d, ds = split_data(data, split)
    one = ds.view([sample])
    it = one[0]
    gen, emos = {}, {"speaker": it["speaker_emotion"].numpy(), "listener": it["listener_emotion"].numpy()}
    for model in ("fsq", "vae"):
        run = out / "runs" / f"{model}_s0"
        if not (run / "best.pt").is_file(): continue
        emo, faces = generate_reactions(load_reaction_model(run / "best.pt"), one, n_samples=1, seed=1000, faces=True)
        gen[f"{model.upper()} listener"] = faces[0, 0]
        emos[f"{model.upper()} listener"] = emo[0, 0]
    lis, spk = it["listener_3dmm"].numpy(), it["speaker_3dmm"].numpy()
    smile = lambda c: c[:, [EXPRESSION_NAMES.index("mouthSmileLeft"), EXPRESSION_NAMES.index("mouthSmileRight")]].mean(1)
    t = int(np.minimum(smile(spk), smile(lis)).argmax())
    img = next(dyadic_frames(spk, lis, generated=gen, emotions=emos, size=size, frames=range(t, t + 1)))
    Image.fromarray(img).save(RESULTS / "react_frame.png", optimize=True)
    print(f"react_frame.png: {split} sample {sample} ({it['speaker']} -> {it['listener']}), frame {t} ({t / 25:.2f} s)")


def generation_settings(config: Path | None) -> dict:
    "The generation settings of the experiment's YAML (`generate: {fsq: {...}, vae: {...}}`); none without a file."
    if config is None: return {}
    import yaml
    return (yaml.safe_load(config.read_text()) or {}).get("generate", {}) or {}


def load_run(run: Path, checkpoint: str = "best"):
    "A trained run's reaction model: its selected epoch (best.pt) or its last (last.pt's weights, best.pt's settings)."
    from speechface.core import load_checkpoint
    from speechface.train.reaction import load_reaction_model
    rm = load_reaction_model(run / "best.pt")
    if checkpoint == "last":
        rm.model.load_state_dict(load_checkpoint(run / "last.pt")["model"])
        rm.model.eval()
    return rm


def calibrated_run(out: Path, run: Path, rm, checkpoint: str, method: str = "variance"):
    """The VAE with its post-filter (method variance | quantile) fitted on the TRAINING split (`vae_output_calibration`,
    2 reactions per training speaker); saved once as <run>/calibrated_[quantile_]<checkpoint>.pt, a checkpoint
    `load_reaction_model` reads."""
    from speechface.core import load_checkpoint, save_checkpoint
    from speechface.data.react import REACTDataset
    from speechface.data.check import react_clip_frames
    from speechface.train.reaction import load_reaction_model, reaction_items, vae_items, vae_output_calibration
    if rm.kind != "reaction_vae": raise SystemExit(f"{run.name}: calibrate is a Trans-VAE generation setting; it is a {rm.kind}")
    path = run / f"calibrated_{'' if method == 'variance' else method + '_'}{checkpoint}.pt"
    source = load_checkpoint(run / f"{checkpoint}.pt").get("epoch")                 # the weights it was fitted to
    if path.is_file() and load_checkpoint(path).get("calibration", {}).get("source_epoch") != source:
        print(f"{run.name}: {path.name} was fitted to another epoch than {checkpoint}.pt's {source}: fitting again", flush=True)
        path.unlink()
    if not path.is_file():
        data = out / "data"
        ds = REACTDataset(data, "train", mirror=True, n_frames=react_clip_frames(data))
        items = vae_items(reaction_items(ds, rm.audio), rm.model.cfg.face)
        cal = vae_output_calibration(rm.model, items, method=method)
        ck = load_checkpoint(run / "best.pt")
        ck["config"] = {**ck["config"], **{k: list(v) for k, v in cal.items()}}
        ck["model"] = rm.model.state_dict()
        ck["calibration"] = {"split": "train", "checkpoint": checkpoint, "samples_per_speaker": 2, "method": method,
                            "source_epoch": source}
        save_checkpoint(path, ck)
        print(f"{run.name}: {method} post-filter fitted on the training split -> {path.name}", flush=True)
    return load_reaction_model(path)


def evaluate(out: Path, split: str, n_samples: int, config: Path | None, tag: str = "", only: str | None = None,
             seeds: str | None = None):
    import numpy as np, pandas as pd, torch
    from speechface.evaluation.react import react_table, rule_report, frc_by_dimension, reference_ranges
    from speechface.metrics.react import gt_baseline, mime_baseline
    from speechface.train.reaction import generate_reactions
    torch.set_num_threads(1)
    data = corpus(out, 2)
    d, ds = split_data(data, split)
    stems = None if only is None else set(only.split(","))
    runs = sorted(p for p in (out / "runs").glob("*_s*")
                  if (p / "best.pt").is_file() and (stems is None or p.name.rsplit("_s", 1)[0] in stems)
                  and (seeds is None or p.name.rsplit("_s", 1)[1] in seeds.split(",")))
    gen = generation_settings(config)
    if not runs: raise SystemExit(f"no trained runs under {out / 'runs'}: run the train stage first")
    preds, faces, info, lat = {}, {}, [], []
    for run in runs:
        g = dict(gen.get(run.name.rsplit("_s", 1)[0], {}))                  # e.g. {checkpoint: last} or {temperature: 0.7}
        ck, cal = g.pop("checkpoint", "best"), g.pop("calibrate", False)
        rm = load_run(run, ck)
        if cal: rm = calibrated_run(out, run, rm, ck, "variance" if cal is True else cal)
        t0 = time.time()
        preds[run.name], faces[run.name] = generate_reactions(rm, ds, n_samples=n_samples, seed=1000 + int(run.name.rsplit("_s", 1)[1]),
                                                              faces=True, **g)
        info.append({"run": run.name, "generate_s": round(time.time() - t0, 1)})
        print(f"{run.name}: generated {preds[run.name].shape} in {info[-1]['generate_s']} s", flush=True)
        lat.append(latency(run, rm, ds))                                # the online manager, same weights
    pd.DataFrame(lat).to_csv(RESULTS / f"react_{split}{'_' + tag if tag else ''}_latency.csv", index=False)
    print(pd.DataFrame(lat).round(2).to_markdown(index=False))
    tab = react_table(preds, d, n_samples=n_samples, seed=0)
    tab.insert(0, "split", split)
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = f"react_{split}{'_' + tag if tag else ''}_table.csv"
    tab.to_csv(RESULTS / name)
    np.savez_compressed(out / f"predictions_{split}{'_' + tag if tag else ''}.npz", **preds)
    print(tab.round(3).to_markdown())
    rules = rule_report(faces, d)                                        # per listener rule: hit rate, lag, lag error
    rules.to_csv(RESULTS / name.replace("_table.csv", "_rules.csv"))
    print(rules.round(3).to_markdown())
    dims = pd.DataFrame({"GT": frc_by_dimension(np.asarray(gt_baseline(d.listener_emotion, 2)), d),
                         "Mime": frc_by_dimension(np.asarray(mime_baseline(d.speaker_emotion, 2)), d),
                         **{k: frc_by_dimension(v, d) for k, v in preds.items()}})
    dims.to_csv(RESULTS / name.replace("_table.csv", "_dims.csv"))     # CCC per emotion dimension (FRC taken apart)
    print(dims.round(2).to_markdown())
    ranges, crit = reference_ranges(d), []
    for r in preds:                                                      # issue 30's bars, per run
        smile = rules.loc[(r, "smile → smile")]
        crit.append({"run": r, "FRC": tab.loc[r, "FRC"], "FRC lo": tab.loc[r, "FRC lo"], "Mime FRC": tab.loc["Mime", "FRC"],
                     "FRC > Mime (CI)": bool(tab.loc[r, "FRC lo"] > tab.loc["Mime", "FRC"]),
                     "FRSyn (skip) - GT": tab.loc[r, "FRSyn (skip)"] - tab.loc["GT", "FRSyn (skip)"],
                     "FRSyn within 3": bool(abs(tab.loc[r, "FRSyn (skip)"] - tab.loc["GT", "FRSyn (skip)"]) <= 3),
                     "FRVar": tab.loc[r, "FRVar"], "FRVar in range": ranges["FRVar"][0] <= tab.loc[r, "FRVar"] <= ranges["FRVar"][1],
                     "FRDiv": tab.loc[r, "FRDiv"], "FRDiv in range": ranges["FRDiv"][0] <= tab.loc[r, "FRDiv"] <= ranges["FRDiv"][1],
                     "smile hit rate": smile["hit rate"], "smile lag error (s)": smile["lag error (s)"],
                     "smile lag within 0.2 s": bool(abs(smile["lag error (s)"]) <= 0.2)})
    crit = pd.DataFrame(crit).set_index("run")
    crit.to_csv(RESULTS / name.replace("_table.csv", "_criteria.csv"))
    print(f"reference ranges of the real listeners: {ranges}")
    print(crit.round(3).T.to_markdown())
    if split == "test" and not tag: frame(out, split)
    (out / f"eval_{split}.json").write_text(json.dumps({"runs": info, "config": str(config) if config else None}, indent=1))


TOKENIZER_VARIANTS = {"seed (raw units, 100 epochs)": {"scale_floor": 0.0},
                      "balanced units, 100 epochs": {},
                      "balanced units, 300 epochs": {"epochs": 300},
                      "balanced units, 300 epochs, lr 3e-3": {"epochs": 300, "lr": 3e-3}}


def tokenizers(out: Path, seed: int = 0):
    """Diagnosis on the validation split: can the FSQ face tokenizer represent the listeners at all? Each variant of the
    tokenizer stage is trained (the FSQ trainer's own `tokenizer_stage`, seed `seed`) and the real validation listeners
    are tokenised and decoded: codebook use, token switch rate, the rule report of the reconstruction (a reaction the
    tokenizer cannot represent, no predictor can produce) and the reconstruction's FRC / FRD with one sample
    (GT's own: 0.797 / 0). Writes docs/results/react_val_tokenizer.csv."""
    import tempfile, shutil
    import pandas as pd, torch
    from speechface.data.react import REACTDataset
    from speechface.data.check import react_clip_frames
    from speechface.train.reaction import reaction_items, tokenizer_stage, ReactionAudioConfig
    from speechface.train.settings import TokenizerSettings
    from speechface.models.fsq import codebook_usage
    from speechface.evaluation.react import react_split, rule_report, react_table
    torch.set_num_threads(1)
    data = corpus(out, 2)
    n = react_clip_frames(data)
    train, val = (reaction_items(REACTDataset(data, s, mirror=True, n_frames=n), ReactionAudioConfig()) for s in ("train", "val"))
    d = react_split(data, "val")
    rows = []
    for name, kw in TOKENIZER_VARIANTS.items():
        tmp = Path(tempfile.mkdtemp())
        try: tok, _ = tokenizer_stage(train, val, TokenizerSettings(**kw), tmp / "tokenizer", seed=seed)
        finally: shutil.rmtree(tmp)
        with torch.no_grad():
            ids = tok.encode(torch.tensor(d.listener_3dmm))
            rec = tok.decode(ids)
        rules = rule_report({name: rec["3dmm"].numpy()}, d, baselines=False).loc[name]
        tab = react_table({name: rec["emotion"].numpy()[:, None]}, d, n_samples=1, n_boot=0, baselines=())
        rows.append({"tokenizer": name, "codes used": codebook_usage(ids.flatten(), tok.codebook_size).used,
                     "switch rate": float((ids[:, 1:] != ids[:, :-1]).float().mean()),
                     **{f"{r.split(' → ')[1]} hit rate": v for r, v in rules["hit rate"].items()},
                     "FRC (K=1)": tab.loc[name, "FRC"], "FRD": tab.loc[name, "FRD"], "FRVar": tab.loc[name, "FRVar"]})
        print(rows[-1], flush=True)
    t = pd.DataFrame(rows).set_index("tokenizer")
    t.to_csv(RESULTS / "react_val_tokenizer.csv")
    print(t.round(3).to_markdown())


def temperatures(out: Path, run_name: str, seed: int, temps: list[float], n_samples: int = 10, checkpoint: str = "last"):
    """Diagnosis on the validation split: one VAE run sampled with its latent's spread scaled (z = mu + T·sigma·eps,
    `ReactionVAE.decode_window`): does more noise in z buy the real listeners' variability (FRVar, FRDiv), and at what
    cost in FRC and timing? Writes docs/results/react_val_temperature_<run>_s<seed>.csv."""
    import pandas as pd, torch
    from speechface.evaluation.react import react_table, rule_report
    from speechface.train.reaction import generate_reactions
    torch.set_num_threads(1)
    data = corpus(out, 2)
    d, ds = split_data(data, "val")
    name = f"{run_name}_s{seed}"
    rm = load_run(out / "runs" / name, checkpoint)
    if rm.kind != "reaction_vae": raise SystemExit(f"{name} is a {rm.kind} run: the temperature sweep is for the Trans-VAE")
    rows = []
    for t in temps:
        emo, faces = generate_reactions(rm, ds, n_samples=n_samples, seed=1000 + seed, faces=True, temperature=t)
        tab = react_table({name: emo}, d, n_samples=n_samples, seed=0, baselines=("Mime",))
        smile = rule_report({name: faces}, d, baselines=False).loc[(name, "smile → smile")]
        r = tab.loc[name]
        rows.append({"temperature": t, **{k: r[k] for k in ("FRC", "FRC lo", "FRC hi", "FRVar", "FRDiv", "FRSyn (skip)")},
                     "Mime FRC": tab.loc["Mime", "FRC"], "smile hit rate": smile["hit rate"],
                     "smile lag error (s)": smile["lag error (s)"]})
        print(rows[-1], flush=True)
    t = pd.DataFrame(rows).set_index("temperature")
    t.to_csv(RESULTS / f"react_val_temperature_{name}.csv")
    print(t.round(3).to_markdown())


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("stage", choices=["corpus", "train", "eval", "tokenizers", "temperatures"])
    p.add_argument("--out", type=Path, default=ROOT / "runs" / "react")
    p.add_argument("--model", choices=list(MODELS))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--config", type=Path, default=None, help="YAML with fsq: and vae: lists of train overrides")
    p.add_argument("--split", default="val")
    p.add_argument("--samples", type=int, default=10)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--tag", default="", help="eval: name of a candidate setting (writes react_<split>_<tag>_table.csv)")
    p.add_argument("--only", default=None, help="eval: only these run names before _s<seed>, comma-separated (fsq,vae)")
    p.add_argument("--seeds", default=None, help="eval: only these seeds, comma-separated (default: every trained seed)")
    p.add_argument("--name", default=None, help="train: run name before _s<seed> (default: the model, fsq or vae)")
    p.add_argument("--temperatures", default="0.5,1,1.5,2,3", help="temperatures: the latent spreads to sample at")
    a, extra = p.parse_known_args()
    if a.stage == "corpus": print(corpus(a.out, a.workers))
    elif a.stage == "train":
        if not a.model: p.error("train needs --model fsq|vae")
        train(a.out, a.model, a.seed, a.config, a.threads, extra, a.name)
    elif a.stage == "tokenizers": tokenizers(a.out, a.seed)
    elif a.stage == "temperatures":
        if not a.only or "," in a.only: p.error("temperatures needs --only RUN (one run name before _s<seed>)")
        temperatures(a.out, a.only, a.seed, [float(t) for t in a.temperatures.split(",")], a.samples)
    else: evaluate(a.out, a.split, a.samples, a.config, a.tag, a.only, a.seeds)


if __name__ == "__main__": main()
