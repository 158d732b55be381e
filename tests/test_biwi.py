"""BIWI end to end, as a BIWI user runs it: a folder in FaceFormer's BIWI layout (V = 23 370, 25 fps, BIWI's subject
names and sentence split, CodeTalker's regions/lve.txt and fdd.txt, 44.1 kHz audio) through `check-data`, `train`,
`test` and `evaluate`, with LVE in BIWI's ×1e-4 unit checked against CodeTalker's formula on the written files."""
import json, pickle
from pathlib import Path
import numpy as np, pandas as pd, pytest, soundfile as sf, soxr
from speechface.data.dataset import BIWI
from speechface.data.mesh import load_templates, load_regions

V, FPS, SECONDS = BIWI.n_vertices, BIWI.fps, 0.6
from clirun import run


def make_biwi_fixture(root: Path, tiny: Path) -> dict:
    """BIWI's layout filled from the tiny synthetic corpus (real eSpeak speech, audio-driven lips): each utterance's
    displacements drive the first 300 of 23 370 vertices, resampled 30 -> 25 fps; the audio is cut to the same
    0.6 s and written at BIWI's 44.1 kHz."""
    rng = np.random.default_rng(0)
    tiny_tpl, regions = load_templates(tiny / "templates.pkl"), load_regions(tiny / "regions.pkl")
    stems = sorted(p.stem for p in (tiny / "vertices_npy").glob("*.npy"))
    seen = BIWI.splits["train"][0]
    names = [f"{s}_e{n:02d}" for s in seen for n in (1, 33, 37)] + ["F1_e01", "M1_e01"]   # train / val / test / test_b
    assert len(stems) >= len(names)
    rest = rng.normal(0, 0.05, (V - 300, 3)).astype(np.float32)                            # the rest of the scan, static
    for d in ("wav", "vertices_npy", "regions"): (root / d).mkdir(parents=True, exist_ok=True)
    templates = {}
    for stem, name in zip(stems, names):
        tiny_subject, subject = stem.rsplit("_", 1)[0], name.split("_")[0]
        templates.setdefault(subject, np.concatenate([tiny_tpl[tiny_subject], rest]))
        disp = np.load(tiny / "vertices_npy" / f"{stem}.npy") - tiny_tpl[tiny_subject].reshape(1, -1)   # (T30, 900)
        t25 = np.arange(int(SECONDS * FPS)) / FPS
        disp = np.stack([np.interp(t25, np.arange(len(disp)) / 30, disp[:, j]) for j in range(disp.shape[1])], 1)
        seq = np.tile(templates[subject].reshape(1, -1), (len(t25), 1))
        seq[:, :900] += disp
        np.save(root / "vertices_npy" / f"{name}.npy", seq.astype(np.float32))
        wav, sr = sf.read(tiny / "wav" / f"{stem}.wav")
        sf.write(root / "wav" / f"{name}.wav", soxr.resample(wav[: int(SECONDS * sr)], sr, 44100), 44100, subtype="PCM_16")
    (root / "templates.pkl").write_bytes(pickle.dumps(templates, protocol=4))
    upper = np.union1d(regions["forehead"], regions["eye_region"])
    (root / "regions" / "lve.txt").write_text(", ".join(map(str, regions["lips"])))       # CodeTalker's format
    (root / "regions" / "fdd.txt").write_text(", ".join(map(str, upper)))
    return {"lips": regions["lips"], "upper": upper}


@pytest.fixture(scope="module")
def biwi(tmp_path_factory, tiny_corpus):
    tmp = tmp_path_factory.mktemp("biwi")
    (tmp / "tiny").symlink_to(tiny_corpus)                       # the shared corpus (tests/conftest.py)
    regions = make_biwi_fixture(tmp / "BIWI", tmp / "tiny")
    ov = ["dataset=biwi", f"dataset.root={tmp / 'BIWI'}", "dataset.num_workers=0", f"out_dir={tmp / 'ck'}", "threads=1",
          "model.feature_dim=16", "model.audio.mel_dim=32", "trainer.lr=1e-3", "trainer.batch_size=3"]
    return tmp, ov, regions


def test_check_data_accepts_the_biwi_layout(biwi):
    tmp, _, _ = biwi
    r = run("check-data", tmp / "BIWI", "--dataset", "biwi")
    assert "OK: no problems found" in r.stdout
    stats = dict(zip(*[[c.strip() for c in l.strip("|").split("|")] for l in r.stdout.splitlines()[:3:2]]))
    assert stats["dataset"] == "biwi" and stats["V"] == "23370"
    assert (stats["split train"], stats["split val"], stats["split test"], stats["split test_b"]) == ("6", "6", "6", "2")


def test_check_data_names_a_bad_region_file(biwi, tmp_path):
    tmp, _, _ = biwi
    import shutil
    bad = tmp_path / "BIWI"
    shutil.copytree(tmp / "BIWI", bad)
    (bad / "regions" / "lve.txt").write_text("2, 6, 99999")
    r = run("check-data", bad, "--dataset", "biwi", check=False)
    assert r.returncode == 1 and "lve.txt: region 'lips' has indices outside [0, 23370)" in r.stdout


def test_train_test_evaluate_in_biwi_units(biwi):
    tmp, ov, regions = biwi
    r = run("train", *ov, "trainer.epochs=2", "trainer.val_every=1", "--quiet")
    assert "run " in r.stdout and "2 epochs" in r.stdout
    run_dir = tmp / "ck" / "faceformer_biwi"
    ck = __import__("torch").load(run_dir / "best.pt", weights_only=True)
    assert ck["model_config"]["motion_dim"] == 3 * V and ck["model_config"]["fps"] == 25 and ck["train_subjects"] == BIWI.train_subjects

    r = run("test", *ov, "--quiet")
    assert "LVE (×1e-4)" in r.stdout and "FDD (×1e-5)" in r.stdout and "LVE (×1e-5)" not in r.stdout
    res = run_dir / "styledependant" / "results"
    # FaceFormer's test protocol: a seen subject (BIWI test A) is predicted in its own style (and the mean style) only
    assert sorted(p.name for p in res.glob("F2_e37_condition_*.npy")) == ["F2_e37_condition_F2.npy", "F2_e37_condition_mean.npy"]

    r = run("evaluate", res, "--data", tmp / "BIWI", "--dataset", "biwi", "--out", tmp / "eval")
    table = pd.read_csv(tmp / "eval" / "metrics.csv", index_col="condition")
    # CodeTalker's LVE on the same files: per frame the max over lve.txt vertices of the squared error, mean over frames
    errs = []
    for s in BIWI.train_subjects:                                 # BIWI's test A: seen subjects, their own style
        gt = np.load(tmp / "BIWI" / "vertices_npy" / f"{s}_e37.npy").reshape(-1, V, 3)
        pred = np.load(res / f"{s}_e37_condition_{s}.npy")[: len(gt)].reshape(-1, V, 3)
        e = ((gt - pred)[:, regions["lips"]] ** 2).sum(-1).max(-1)
        np.testing.assert_allclose(table.loc[s, "LVE (×1e-4)"], e.mean() / 1e-4, rtol=1e-4)
        errs.append(e)
    np.testing.assert_allclose(table.loc["average over styles", "LVE (×1e-4)"],
                               np.mean([e.mean() for e in errs]) / 1e-4, rtol=1e-4)
    assert json.loads((tmp / "eval" / "metrics.json").read_text())["dataset"] == "biwi"

    # a seen subject's prediction under another style is reported, not scored (FaceFormer scores own style only)
    import shutil
    shutil.copy(res / "F2_e37_condition_F2.npy", res / "F2_e37_condition_F3.npy")
    r = run("evaluate", res, "--data", tmp / "BIWI", "--dataset", "biwi", "--out", tmp / "eval2")
    assert "F2_e37_condition_F3.npy: F2 is a training subject" in r.stdout
    again = pd.read_csv(tmp / "eval2" / "metrics.csv", index_col="condition")
    np.testing.assert_allclose(again.loc["F3", "LVE (×1e-4)"], table.loc["F3", "LVE (×1e-4)"])
