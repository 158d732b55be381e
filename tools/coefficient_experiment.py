"""Audio-to-face and audio-to-gesture on BEAT2 coefficients: the FaceFormer actor against static and mean-pose baselines.

Stages (run from the repository root; each is resumable and writes under --out, default runs/coefficients):
  python tools/coefficient_experiment.py corpus                 # the `medium` synthetic BEAT2 corpus (out/data)
  python tools/coefficient_experiment.py tune                   # seed 0 of every candidate, both parts; validation tables
  python tools/coefficient_experiment.py train --part face --candidate rollout --seed 1
  python tools/coefficient_experiment.py eval --split test --config docs/results/beat2_coefficients_prereg.yaml
  python tools/coefficient_experiment.py frames [--video DIR]   # a frame of each video (seed-0 actors, test recording 0)
`tune` trains seed 0 of each candidate setting (CANDIDATES) for both parts and writes
docs/results/beat2_coefficients_val_{face,gesture}.csv (every candidate and the baselines on the validation split).
The rule, fixed before any test number exists: per part, the candidate with the lowest validation MSE in normalised
units (the loop's selection score, `best_val_mse` of best.pt) is written with its overrides into the --config YAML,
committed, and only then is `eval --split test` run: it trains the missing seeds (0 and 1) of the chosen candidate,
and writes docs/results/beat2_coefficients_{face,gesture}.csv (one row per method and seed, 95 % bootstrap intervals
over test recordings), beat2_coefficients_{face,gesture}_paired.csv (each actor seed minus each baseline, per measure,
with paired bootstrap intervals over the same recordings) and docs/results/beat2_coefficients.png.

Why `medium` and not the `small` preset of speechface.data.beat2_synth: on `small` (32 training recordings) the
gesture actor's validation error rose again after ~20 epochs while its training loss kept falling, and its 8 test
recordings give wide intervals; `medium` has 6 speakers × (12 train, 3 val, 3 test) recordings of three sentences.
Training runs on one CPU thread each (`threads=1`).
"""
import argparse, subprocess, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results"
PARTS = ("face", "gesture")
SEEDS = (0, 1)
COMMON = ["trainer.epochs=40", "trainer.val_every=5"]            # shared by every candidate
CANDIDATES = {                                                   # name -> extra `speechface train` overrides
    "rollout": ["trainer.mode=rollout", "trainer.teacher_mix_end=0.0"],   # inputs annealed from GT to the model's own rollout
    "teacher": ["trainer.mode=teacher"],                                  # FaceFormer's teacher forcing
}


def medium_preset():
    from speechface.data.beat2_synth import Beat2Preset
    return Beat2Preset(speakers=6, recordings=(12, 3, 3), sentences=3)


def corpus(out: Path) -> Path:
    "The medium synthetic BEAT2 corpus under out/data (generated once; metadata.json names preset and seed)."
    data = out / "data"
    if not (data / "metadata.json").is_file():
        from speechface.data.beat2_synth import generate_beat2_corpus
        generate_beat2_corpus(data, medium_preset(), 0, workers=1, progress=True)
    return data


def run_name(part: str, candidate: str, seed: int) -> str: return f"{part}_{candidate}_s{seed}"


def overrides(candidate: str, config: Path | None = None, part: str | None = None) -> list[str]:
    "COMMON + the candidate's overrides, or the pre-registered ones of `part` from --config."
    if config is not None:
        import yaml
        cfg = yaml.safe_load(config.read_text())[part]
        return [str(o) for o in cfg["overrides"]]
    return COMMON + CANDIDATES[candidate]


def train(out: Path, part: str, candidate: str, seed: int, extra: list[str]) -> Path:
    "speechface train trainer=coefficients ... (skipped when the run has finished; resumed when it has started)."
    data, run = corpus(out), run_name(part, candidate, seed)
    rd = out / "runs" / run
    n = int(next(o.split("=")[1] for o in extra if o.startswith("trainer.epochs=")))
    if (rd / "metrics.csv").is_file() and len((rd / "metrics.csv").read_text().strip().splitlines()) - 1 >= n:
        return rd
    argv = [sys.executable, "-m", "speechface.cli", "train", "--quiet", "trainer=coefficients", "dataset=beat2", f"dataset.root={data}",
            f"dataset.part={part}", f"dataset.cache_dir={out / 'cache'}", f"out_dir={out / 'runs'}", f"run={run}",
            f"seed={seed}", "threads=1", *extra]
    print(" ".join(argv[4:]), flush=True)
    t0 = time.time()
    subprocess.run(argv, check=True)
    print(f"{run}: {time.time() - t0:.0f} s", flush=True)
    return rd


def evaluate(out: Path, part: str, split: str, runs: dict, n_boot: int = 1000):
    "Summary table (method, seed, measures with intervals) of the given runs and both baselines on a split; and the predictions."
    import torch
    from speechface.data.beat2_motion import BEAT2MotionDataset, neutral_vector
    from speechface.data.beat2_synth import expression_basis, rest_pose
    from speechface.train.coefficients import (load_coefficient_actor, predict_coefficients, baseline_predictions, evaluate_coefficients,
                                               fgd_encoder)
    torch.set_num_threads(1)
    data = corpus(out)
    methods, seeds, ds = {}, {}, None
    for name, (rd, seed) in runs.items():
        model, stats, _ = load_coefficient_actor(rd / "best.pt")
        ds = ds or BEAT2MotionDataset(data, split, part, stats=stats, cache_dir=out / "cache")
        methods[name], seeds[name] = predict_coefficients(model, ds, stats), seed
    rest = rest_pose() if part == "gesture" else None
    methods.update(baseline_predictions(ds, neutral_vector(part, rest)))
    enc = fgd_encoder(data, cache_dir=out / "cache") if part == "gesture" else None
    per, summary = evaluate_coefficients(ds, methods, expression_basis(), rest, enc, n_boot=n_boot)
    summary.insert(0, "seed", [seeds.get(m, "") for m in summary.index])
    return summary, methods, ds, per


def best_val(rd: Path) -> float:
    from speechface.core import load_checkpoint
    return float(load_checkpoint(rd / "best.pt", "cpu")["best_val_mse"])


def tune(out: Path):
    "Seed 0 of every candidate for both parts, and the validation tables."
    for part in PARTS:
        runs = {}
        for cand in CANDIDATES:
            rd = train(out, part, cand, 0, overrides(cand))
            runs[f"actor {cand}"] = (rd, 0)
        summary, _, _, _ = evaluate(out, part, "val", runs, n_boot=200)
        summary.insert(1, "best_val_mse", [best_val(runs[m][0]) if m in runs else float("nan") for m in summary.index])
        path = RESULTS / f"beat2_coefficients_val_{part}.csv"
        summary.to_csv(path, float_format="%.6g")
        print(f"wrote {path}")
        print(summary.iloc[:, :8].round(4).to_string())


def plot(face: tuple, gesture: tuple, path: Path):
    "One test recording: jaw opening and the close curve (face), elbow flexion with the known beat peaks (gesture)."
    import numpy as np, matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from speechface.data.beat2_motion import jaw_opening, elbow_flexion, annotations
    from speechface.data.beat2_synth import expression_basis
    from speechface.metrics.coefficient_errors import articulation_from_expressions
    from speechface.train.coefficients import CLOSE_CHANNEL, BILABIAL_PHONES
    fm, fds = face
    gm, gds = gesture
    id = fds.ids[0]
    ann = annotations(fds.root, id)
    t = np.arange(len(fds.targets[id])) / 30
    fig, ax = plt.subplots(3, 1, figsize=(9, 6.5), sharex=True)
    show = [m for m in fm if m in ("GT", "actor (seed 0)", "mean pose", "static")]
    series = {"GT": fds.targets[id], **{m: fm[m][id] for m in show if m != "GT"}}
    for k, (m, x) in enumerate(series.items()):
        ax[0].plot(t, np.degrees(jaw_opening(x)), label=m, lw=1.5 if m == "GT" else 1)
        ax[1].plot(t, articulation_from_expressions(x[:, 6:], expression_basis())[:, CLOSE_CHANNEL], lw=1.5 if m == "GT" else 1)
    for s, e, l in ann["phones"]:
        if l in BILABIAL_PHONES:
            for a in ax[:2]: a.axvspan(s, e, color="C3", alpha=0.2)
    ax[0].set_ylabel("jaw opening (°)")
    ax[1].set_ylabel("close curve")
    ax[0].legend(fontsize=7, ncol=4)
    ax[0].set_title(f"{id}: face (/p b m/ shaded) and gesture (known beat peaks as lines)", fontsize=9)
    gid = gds.ids[0]
    gann = annotations(gds.root, gid)
    tg = np.arange(len(gds.targets[gid])) / 30
    for m, x in {"GT": gds.targets[gid], **{m: gm[m][gid] for m in gm if m in ("actor (seed 0)", "mean pose", "static")}}.items():
        ax[2].plot(tg, np.degrees(elbow_flexion(x).sum(1)), label=m, lw=1.5 if m == "GT" else 1)
    for p in gann["beats"]: ax[2].axvline(p, color="k", lw=0.5)
    ax[2].set_ylabel("elbow flexion, both (°)")
    ax[2].set_xlabel("s")
    ax[2].legend(fontsize=7, ncol=4)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def eval_test(out: Path, config: Path, split: str):
    "Train the pre-registered candidate's seeds, then the tables (and the figure) on `split`."
    import yaml
    prereg = yaml.safe_load(config.read_text())
    parts = {}
    for part in PARTS:
        cand = prereg[part]["candidate"]
        runs = {f"actor (seed {s})": (train(out, part, cand, s, overrides(cand, config, part)), s) for s in SEEDS}
        summary, methods, ds, per = evaluate(out, part, split, runs)
        name = f"beat2_coefficients_{part}" if split == "test" else f"beat2_coefficients_{split}_{part}_prereg"
        summary.to_csv(RESULTS / f"{name}.csv", float_format="%.6g")
        print(f"wrote {RESULTS / name}.csv")
        import pandas as pd
        from speechface.train.coefficients import paired_differences
        paired = pd.concat([paired_differences(per, m, b) for m in runs for b in ("static", "mean pose")])
        paired.to_csv(RESULTS / f"{name}_paired.csv", index=False, float_format="%.6g")
        print(f"wrote {RESULTS / name}_paired.csv")
        print(summary[[c for c in summary.columns if not c.endswith(("_lo", "_hi"))]].round(4).to_string())
        parts[part] = (methods, ds)
    if split == "test": plot(parts["face"], parts["gesture"], RESULTS / "beat2_coefficients.png")


def _label(img, text: str):
    from PIL import Image, ImageDraw
    im = Image.fromarray(img)
    ImageDraw.Draw(im).text((8, 6), text, fill=(0, 0, 0))
    import numpy as np
    return np.asarray(im)


def frames(out: Path, config: Path, video: Path | None = None, size: int = 192):
    """A frame of each video for the first test recording, seed-0 actors of the pre-registered candidate: the face
    (GT | actor | mean pose on the coefficient head, at GT's widest lip gap) and the gesture (GT | actor stick figures
    at the largest known beat). With `video`, both whole recordings as MP4s with the speech (not committed)."""
    import numpy as np, torch, yaml
    from PIL import Image
    from speechface.data.beat2 import beat2_paths
    from speechface.data.beat2_motion import BEAT2MotionDataset, neutral_vector, elbow_flexion, gesture_poses, annotations
    from speechface.data.beat2_synth import CoefficientFace, rest_pose
    from speechface.train.coefficients import load_coefficient_actor, predict_coefficients, baseline_predictions
    from speechface.data.mesh import inner_lip_distance
    from speechface.metrics.coefficients import coefficient_vertices
    from speechface.viz.coefficient_face import coefficient_rig, coefficient_frames, coefficient_video
    from speechface.viz.gesture import stick_frames
    from speechface.viz.video import write_video
    torch.set_num_threads(1)
    prereg, data = yaml.safe_load(config.read_text()), corpus(out)
    seqs = {}
    for part in PARTS:
        model, stats, _ = load_coefficient_actor(out / "runs" / run_name(part, prereg[part]["candidate"], 0) / "best.pt")
        ds = BEAT2MotionDataset(data, "test", part, stats=stats, cache_dir=out / "cache")
        ds.ids = ds.ids[:1]
        ds.index = ds.index[:1]                          # the first test recording only
        id = ds.ids[0]
        base = baseline_predictions(ds, neutral_vector(part, rest_pose() if part == "gesture" else None))
        seqs[part] = {"GT": ds.targets[id], "actor (seed 0)": predict_coefficients(model, ds, stats)[id],
                      "mean pose": base["mean pose"][id]}
    wav, phones = beat2_paths(data, id)["audio"], annotations(data, id)["phones"]
    face = CoefficientFace()
    rig = coefficient_rig(face)
    t = int(np.argmax(inner_lip_distance(coefficient_vertices(face, seqs["face"]["GT"]), *rig.lip_pairs)))
    img = next(f for i, f in enumerate(coefficient_frames(face, seqs["face"], phones, size=size, rig=rig)) if i == t)
    Image.fromarray(img).quantize(colors=128).save(RESULTS / "beat2_face_frame.png", optimize=True)
    print(f"{RESULTS / 'beat2_face_frame.png'}: {id} frame {t} ({t / 30:.2f} s), GT | actor (seed 0) | mean pose")
    poses = {k: gesture_poses(v, rest_pose()) for k, v in seqs["gesture"].items() if k != "mean pose"}
    beats = [int(round(p * 30)) for p in annotations(data, id)["beats"]]
    flex = elbow_flexion(seqs["gesture"]["GT"]).sum(1)
    tg = max(beats, key=lambda b: flex[min(b, len(flex) - 1)])
    cols = {k: stick_frames(p, size=size) for k, p in poses.items()}                 # (T, size, 2 size, 3) each
    row = np.concatenate([_label(cols[k][tg], k) for k in cols], 1)
    Image.fromarray(row).quantize(colors=64).save(RESULTS / "beat2_gesture_frame.png", optimize=True)
    print(f"{RESULTS / 'beat2_gesture_frame.png'}: {id} frame {tg} ({tg / 30:.2f} s, a known beat), GT | actor (seed 0), front and side")
    if video:
        video.mkdir(parents=True, exist_ok=True)
        coefficient_video(face, seqs["face"], video / "beat2_face.mp4", audio=wav, phones=phones, rig=rig, progress=True)
        T = min(len(c) for c in cols.values())
        write_video(np.concatenate([np.stack([_label(f, k) for f in cols[k][:T]]) for k in cols], 2), 30, video / "beat2_gesture.mp4",
                    audio=wav)
        print(f"wrote {video / 'beat2_face.mp4'} and {video / 'beat2_gesture.mp4'}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("stage", choices=("corpus", "tune", "train", "eval", "frames"))
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "coefficients")
    ap.add_argument("--part", choices=PARTS, default="face")
    ap.add_argument("--candidate", choices=tuple(CANDIDATES), default="rollout")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--split", default="test", choices=("val", "test"))
    ap.add_argument("--config", type=Path, default=RESULTS / "beat2_coefficients_prereg.yaml",
                    help="the pre-registered choice (YAML: per part, candidate and overrides)")
    ap.add_argument("--video", type=Path, help="frames: also write both videos with the speech into this folder")
    a = ap.parse_args(argv)
    if a.stage == "corpus": print(corpus(a.out))
    elif a.stage == "tune": tune(a.out)
    elif a.stage == "train": train(a.out, a.part, a.candidate, a.seed, overrides(a.candidate))
    elif a.stage == "frames": frames(a.out, a.config, a.video)
    else: eval_test(a.out, a.config, a.split)


if __name__ == "__main__":
    main()
