"""End-to-end: speechface train / test / evaluate / animate on the tiny corpus, as a user runs them."""
import json
import numpy as np, pytest

TINY = ["model.feature_dim=32", "model.audio.mel_dim=32", "trainer.lr=1e-3", "trainer.batch_size=4"]
from clirun import run


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_corpus):
    tmp = tmp_path_factory.mktemp("t")
    (tmp / "tiny").symlink_to(tiny_corpus)                       # the shared corpus (tests/conftest.py)
    ov = [f"dataset.root={tmp / 'tiny'}", f"out_dir={tmp / 'ck'}", *TINY]
    r = run("train", *ov, "trainer.epochs=2", "--quiet")
    assert "best val LVE" in r.stdout
    return tmp, ov


def test_train_writes_checkpoints_and_csv(trained):
    tmp, _ = trained
    run_dir = tmp / "ck" / "faceformer_synthetic"
    for f in ("best.pt", "last.pt", "metrics.csv", "config.json"): assert (run_dir / f).is_file(), f
    rows = (run_dir / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("epoch,train_loss") and len(rows) == 3


def test_resume_continues_from_last(trained):
    tmp, ov = trained
    r = run("train", *ov, "trainer.epochs=3")
    assert "resumed" in r.stdout and "at epoch 2" in r.stdout      # picked up after the two trained epochs
    assert "epoch 3 |" in r.stdout and "epoch 1 |" not in r.stdout  # trained only the missing epoch
    rows = (tmp / "ck" / "faceformer_synthetic" / "metrics.csv").read_text().splitlines()
    assert len(rows) == 4


def test_test_and_evaluate(trained):
    tmp, ov = trained
    r = run("test", *ov, "--quiet")
    assert "average over styles" in r.stdout and "LVE" in r.stdout
    res = tmp / "ck" / "faceformer_synthetic" / "styledependant" / "results"
    assert len(list(res.glob("*_condition_synth_f1.npy"))) == 2 and len(list(res.glob("*_condition_mean.npy"))) == 2
    (res / "synth_m7_sentence21_condition_synth_f1.npy").unlink()
    r = run("evaluate", res, "--data", tmp / "tiny")
    assert "synth_m7_sentence21" in r.stdout   # the missing file is named
    assert json.loads((res.parent / "metrics.json").read_text())["missing"]


def test_animate_any_wav(trained, tmp_path):
    tmp, _ = trained
    import soundfile as sf
    wav, sr = sf.read(tmp / "tiny" / "wav" / "synth_f1_sentence01.wav")
    stereo48 = tmp_path / "stereo48k.wav"
    import soxr
    x = soxr.resample(wav, sr, 48000)
    sf.write(stereo48, np.stack([x, x], 1), 48000, subtype="PCM_24")
    ck = tmp / "ck" / "faceformer_synthetic" / "best.pt"
    run("animate", stereo48, "--ckpt", ck, "--out", tmp_path / "a.npy", "--style", "synth_m2")
    m = np.load(tmp_path / "a.npy")
    assert m.shape == (round(len(wav) / sr * 30), 900) and np.isfinite(m).all()
    run("animate", stereo48, "--ckpt", ck, "--out", tmp_path / "seq.obj", "--subject", "mean")  # the old name of --style still works
    assert len(list((tmp_path / "seq").glob("*.obj"))) == m.shape[0]
    r = run("animate", stereo48, "--ckpt", ck, "--out", tmp_path / "b.npy", "--style", "nobody", check=False)
    assert r.returncode == 2 and "unknown style" in r.stderr


def test_animate_bad_audio_is_clear(trained, tmp_path):
    tmp, _ = trained
    bad = tmp_path / "bad.wav"
    bad.write_text("this is not audio")
    r = run("animate", bad, "--ckpt", tmp / "ck" / "faceformer_synthetic" / "best.pt", "--out", tmp_path / "x.npy", check=False)
    assert r.returncode == 2 and "bad.wav" in r.stderr


def test_animate_folder_and_compare(trained, tmp_path):
    "`animate` over a folder writes one motion per file; `--compare` renders the comparison layout with the speech."
    tmp, _ = trained
    ck = tmp / "ck" / "faceformer_synthetic" / "best.pt"
    r = run("animate", tmp / "tiny" / "wav", "--ckpt", ck, "--out", tmp_path / "many", "--batch-size", "4", "--quiet")
    n = len(list((tmp / "tiny" / "wav").glob("*.wav")))
    assert len(list((tmp_path / "many").glob("*.npy"))) == n and f"wrote {n} files" in r.stdout
    wav = tmp / "tiny" / "wav" / "synth_f1_sentence01.wav"
    r = run("animate", wav, "--compare", ck, ck, "--names", "one", "two", "--regions", tmp / "tiny" / "regions.pkl",
            "--textgrid", tmp / "tiny" / "textgrids" / "synth_f1_sentence01.TextGrid", "--size", "128",
            "--out", tmp_path / "cmp.mp4", "--quiet")
    from speechface.viz.video import video_info
    info = video_info(tmp_path / "cmp.mp4")
    assert info["width"] == 2 * 128 and info["audio_codec"] and "(one | two)" in r.stdout, (info, r.stdout)
    r = run("animate", wav, "--compare", ck, "--out", tmp_path / "c.mp4", check=False)
    assert r.returncode == 2 and "--regions" in r.stderr
