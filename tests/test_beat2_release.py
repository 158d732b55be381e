"""The real BEAT2 release's quirks, planted into copies of the tiny synthetic corpus (`plant_release_quirks`): motion and
speech of different lengths, pickled members, no frame rate, betas (1, 300), a renamed word tier, a missing wav and a
missing TextGrid. The loaders read what is readable, cut what is long, skip (and name) what is not, and `check-data`
lists every problem; none of this needs EMAGE's code."""
import os, subprocess, sys, warnings
from pathlib import Path

import numpy as np
import pytest

from speechface.data.beat2 import (BEAT2Dataset, BEAT2DataError, BEAT2LengthWarning, BEAT2SkipWarning, beat2_paths,
                                   read_beat2_npz, read_word_tier, pose_rot6d)
from speechface.data.beat2_synth import cached_beat2_corpus, plant_release_quirks, RELEASE_QUIRKS


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    "(the tiny corpus, read only; a copy with the release's quirks planted)."
    root = cached_beat2_corpus("tiny")
    out = tmp_path_factory.mktemp("release") / "beat_english_v2.0.0"
    assert plant_release_quirks(root, out) == RELEASE_QUIRKS
    return root, out


def test_motion_files_in_the_release_variants_read_as_the_originals(corpora):
    root, out = corpora
    for id in ("2_ben_0_1_1", "2_ben_0_2_2"):                     # pickled gender/model/frame rate, no frame rate, betas (1, 300)
        a, b = read_beat2_npz(beat2_paths(root, id)["motion"]), read_beat2_npz(beat2_paths(out, id)["motion"])
        assert b["fps"] == 30 and b["betas"].shape == (300,)
        for k in ("poses", "expressions", "trans"): np.testing.assert_allclose(b[k], a[k], atol=1e-6)
    with pytest.raises(BEAT2DataError, match="recorded at mocap_frame_rate = 30 fps, expected 60"):   # a stated rate still counts
        read_beat2_npz(beat2_paths(out, "2_ben_0_4_4")["motion"], fps=60)
    assert read_word_tier(beat2_paths(out, "1_ada_0_3_3")["text"]) == read_word_tier(beat2_paths(root, "1_ada_0_3_3")["text"])


def test_default_raises_on_the_first_bad_recording(corpora):
    _, out = corpora
    with pytest.raises(BEAT2DataError, match=r"1_ada_0_2_2\.npz: length mismatch: 64 frames = 2\.13 s .* covers 40% of the longer"):
        BEAT2Dataset(out, "train", window=30)
    with pytest.raises(BEAT2DataError, match=r"2_ben_0_3_3\.wav: speech of 2_ben_0_3_3 not found"):
        BEAT2Dataset(out, "val", window=30)


def test_skip_cut_and_speakers(corpora, tmp_path, monkeypatch):
    root, out = corpora
    monkeypatch.setenv("SPEECHFACE_CACHE", str(tmp_path / "default_cache"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tr = BEAT2Dataset(out, "train", window=30, on_error="skip", cache_dir="auto")
    assert sorted(w.category.__name__ for w in caught) == ["BEAT2LengthWarning", "BEAT2SkipWarning"], [str(w.message) for w in caught]
    assert tr.ids == ["1_ada_0_1_1", "2_ben_0_1_1", "2_ben_0_2_2"] and list(tr.skipped) == ["1_ada_0_2_2"]
    assert tr.cut == {"1_ada_0_1_1": (126 / 30, pytest.approx(5.70875))}
    assert tr.cache_stats == {"hit": 0, "miss": 4} and any((tmp_path / "default_cache" / "beat2").rglob("features.npy"))
    rec, orig = tr.recordings["1_ada_0_1_1"], BEAT2Dataset(root, "train", speakers=["ada"], window=30).recordings["1_ada_0_1_1"]
    assert len(rec["words"]) == 126 and rec["audio"].shape == (126 * 16000 // 30,)
    np.testing.assert_array_equal(rec["audio"], orig["audio"][: 126 * 16000 // 30])            # cut at the end: same start
    np.testing.assert_array_equal(rec["words"], orig["words"][:126])
    m = read_beat2_npz(beat2_paths(out, "2_ben_0_1_1")["motion"], betas=False)
    item = tr[tr.index.index(("2_ben_0_1_1", 0))]
    np.testing.assert_allclose(item["pose_6d"].numpy(), pose_rot6d(m["poses"][:30]).reshape(30, 330), atol=1e-6)
    assert item["latent_all"].shape == (30, 337)
    ben = BEAT2Dataset(out, "train", speakers=[2], window=30, on_error="skip", cache_dir="auto")
    assert ben.ids == ["2_ben_0_1_1", "2_ben_0_2_2"] and not ben.skipped and ben.cache_stats == {"hit": 2, "miss": 0}
    val = BEAT2Dataset(out, "val", window=30, on_error="skip")
    assert val.ids == ["1_ada_0_3_3"] and list(val.skipped) == ["2_ben_0_3_3"]               # the renamed tier read as the first
    with pytest.raises(BEAT2DataError, match="every 'test' recording of|every 'test' recording was skipped"):
        BEAT2Dataset(out, "test", speakers=["ada"], window=30, on_error="skip")


def test_motion_dataset_and_check_data_cli(corpora, tmp_path):
    from speechface.data.beat2_motion import BEAT2MotionDataset
    _, out = corpora
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BEAT2LengthWarning)
        warnings.simplefilter("ignore", BEAT2SkipWarning)
        va = BEAT2MotionDataset(out, "val", "gesture", speakers=["ada"], on_error="skip")
    assert va.train_speakers == ["ada"] and va.ids == ["1_ada_0_3_3"] and va[0]["one_hot"].tolist() == [1.0]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    r = subprocess.run([sys.executable, "-m", "speechface.cli", "check-data", str(out), "--dataset", "beat2"],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 1, r.stdout + r.stderr
    for name in ("1_ada_0_2_2.npz", "2_ben_0_3_3.wav", "1_ada_0_4_4.TextGrid", "1_ada_0_1_1.npz"):   # three errors, the gap a warning
        assert name in r.stdout, (name, r.stdout)
    assert "2_ben_0_1_1" not in r.stdout and "2_ben_0_2_2" not in r.stdout and "1_ada_0_3_3" not in r.stdout, r.stdout


def test_training_skips_a_bad_recording_with_one_warning_line(tmp_path):
    "`speechface train dataset=beat2` (on_error=skip): a recording whose wav is damaged is left out, named in one warning line."
    import shutil
    from hostile_cases import raw_wav
    root = tmp_path / "beat2"
    shutil.copytree(cached_beat2_corpus("tiny"), root, ignore=shutil.ignore_patterns(".manifest.json"))
    (root / "wave16k" / "1_ada_0_1_1.wav").write_bytes(raw_wav(1, bytes(4000)))          # a 1 Hz header
    cmd = [sys.executable, "-m", "speechface.cli", "train", "trainer=coefficients", "dataset=beat2", f"dataset.root={root}",
           "model.feature_dim=32", "model.audio.mel_dim=32", "trainer.batch_size=4", "trainer.epochs=1", f"out_dir={tmp_path / 'out'}",
           f"dataset.cache_dir={tmp_path / 'cache'}", "--quiet"]
    r = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("speechface train: warning: ") and "1_ada_0_1_1.wav" in lines[0], r.stderr
    assert "1 Hz" in lines[0] and "on_error='skip'" in lines[0]
