"BEAT2 layout: a byte-for-byte deterministic synthetic corpus, the loader's alignment, filtering and cache, every bad file named, the CLI."
import json, os, shutil, subprocess, sys
from pathlib import Path

import numpy as np
import pytest

from speechface.data.beat2 import (BEAT2Dataset, BEAT2DataError, beat2_paths, read_beat2_npz, read_split_csv, read_word_tier,
                                   split_parts, write_beat2_wav, PART_DIMS)
from speechface.data.beat2_synth import generate_beat2_corpus, cached_beat2_corpus, measured_beat_lag, BEAT_LAG
from speechface.data.check import check_dataset


@pytest.fixture(scope="module")
def beat2_tiny():
    "The tiny synthetic BEAT2 corpus (cached, read only: copy before changing files)."
    return cached_beat2_corpus("tiny")


def _files(root):
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(Path(root).rglob("*")) if p.is_file() and p.name != ".manifest.json"}


def test_synthetic_corpus_is_deterministic(tmp_path, beat2_tiny):
    generate_beat2_corpus(tmp_path / "a", "tiny", seed=0, progress=False)
    a, cached = _files(tmp_path / "a"), _files(beat2_tiny)
    assert a.keys() == cached.keys() and len(a) == 8 * 4 + 2            # npz, wav, TextGrid, beats json per recording; csv, metadata
    diff = [k for k in a if a[k] != cached[k]]
    assert diff == [], diff[:5]
    generate_beat2_corpus(tmp_path / "b", "tiny", seed=1, progress=False)
    b = _files(tmp_path / "b")
    assert b["smplxflame_30/1_ada_0_1_1.npz"] != a["smplxflame_30/1_ada_0_1_1.npz"]   # another seed, another corpus


def test_layout_and_beat_lag(beat2_tiny):
    split = read_split_csv(beat2_tiny / "train_test_split.csv")
    assert sorted(set(split.values())) == ["test", "train", "val"]
    for id in split:
        with np.load(beat2_paths(beat2_tiny, id)["motion"], allow_pickle=False) as z:
            assert {k: (z[k].dtype.str, z[k].ndim) for k in z.files} == {
                "betas": ("<f8", 1), "poses": ("<f8", 2), "expressions": ("<f8", 2), "trans": ("<f8", 2),
                "mocap_frame_rate": ("<i8", 0), "gender": ("<U7", 0), "model": ("<U9", 0)}
        m = read_beat2_npz(beat2_paths(beat2_tiny, id)["motion"])
        beats = json.loads((beat2_tiny / "beats" / f"{id}.json").read_text())["beats"]
        assert len(beats) >= 5
        assert measured_beat_lag(m["poses"], [b["vowel_onset"] for b in beats]) == round(BEAT_LAG * 30)
        # the face is the documented function of the TextGrid's phones: jaw = JAW_OPEN x jaw curve, expressions = curves @ W
        from speechface.data.textgrid import read_textgrid
        from speechface.data.articulation import SpeakingStyle
        from speechface.data.beat2_synth import face_motion
        meta = json.loads((beat2_tiny / "metadata.json").read_text())
        style = SpeakingStyle(**meta["speakers"][id.split("_")[1]]["speaking"])
        phones = read_textgrid(beat2_paths(beat2_tiny, id)["text"])["phones"]
        jaw, expr, _ = face_motion(phones, np.arange(len(m["poses"])) / 30, style)
        np.testing.assert_allclose(m["poses"][:, 66:69], jaw, atol=1e-4)
        np.testing.assert_allclose(m["expressions"], expr, atol=1e-3)
        assert m["poses"][:, 66].max() > 0.15                                 # the mouth opens wide somewhere


def test_words_per_frame_and_parts(beat2_tiny):
    ds = BEAT2Dataset(beat2_tiny, "train", window=60, stride=30)
    tier = read_word_tier(beat2_paths(beat2_tiny, ds.ids[0])["text"])
    for i, (id, a) in enumerate(ds.index):
        if id != ds.ids[0]: continue
        item = ds[i]
        assert {k: tuple(item[k].shape) for k in PART_DIMS} == {k: (60, d) for k, d in PART_DIMS.items()}
        assert item["audio"].shape == (32000,)
        for f in range(0, 60, 7):                                          # the word under frame a + f, looked up by hand
            t = (a + f) / 30
            w = next((w for s, e, w in tier if s <= t < e), "")
            assert ds.vocab[item["words"][f]] == w, (id, a + f, w)
    m = read_beat2_npz(beat2_paths(beat2_tiny, ds.ids[0])["motion"])
    parts = split_parts(m["poses"], m["expressions"], m["trans"])
    np.testing.assert_allclose(ds[0]["latent_all"].numpy(), parts["latent_all"][:60], atol=1e-6)
    np.testing.assert_allclose(ds[0]["pose_6d"].numpy().reshape(60, 55, 6)[:, 22], parts["face"][:60, :6],
                               atol=1e-6)   # the jaw is in EMAGE's 330


def test_speaker_filter_and_vocabulary(beat2_tiny):
    ada = BEAT2Dataset(beat2_tiny, "train", speakers=["ada"], window=30)
    ben = BEAT2Dataset(beat2_tiny, "train", speakers=[2], window=30)
    assert ada.ids == ["1_ada_0_1_1", "1_ada_0_2_2"] and ben.ids == ["2_ben_0_1_1", "2_ben_0_2_2"]
    assert ada.vocab == ben.vocab                                          # always the whole training split's
    test = BEAT2Dataset(beat2_tiny, "test", window=30)
    assert {i.split("_")[1] for i in test.ids} == {"ada", "ben"}
    with pytest.raises(BEAT2DataError, match="no 'train' recordings of speakers"):
        BEAT2Dataset(beat2_tiny, "train", speakers=["zoe"])


def test_cache_invalidation(tmp_path, beat2_tiny):
    root = Path(shutil.copytree(beat2_tiny, tmp_path / "b2"))
    cache = tmp_path / "cache"
    kw = dict(window=30, speakers=["ada"], cache_dir=cache)
    a = BEAT2Dataset(root, "train", **kw)
    assert a.cache_stats == {"hit": 0, "miss": 2}
    b = BEAT2Dataset(root, "train", **kw)
    assert b.cache_stats == {"hit": 2, "miss": 0}
    np.testing.assert_array_equal(a[0]["latent_all"], b[0]["latent_all"])
    npz = beat2_paths(root, "1_ada_0_1_1")["motion"]
    z = dict(np.load(npz))
    z["poses"] = z["poses"] + 0.1
    from speechface.data.beat2 import write_beat2_npz
    write_beat2_npz(npz, z["poses"], z["expressions"], z["trans"], z["betas"])
    c = BEAT2Dataset(root, "train", **kw)
    assert c.cache_stats == {"hit": 1, "miss": 1}
    assert not np.allclose(c[0]["latent_all"].numpy(), a[0]["latent_all"].numpy())
    st = npz.stat()
    os.utime(npz, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))   # touched only: a new key, same arrays
    d = BEAT2Dataset(root, "train", **kw)
    assert d.cache_stats == {"hit": 1, "miss": 1}
    np.testing.assert_array_equal(d[0]["latent_all"], c[0]["latent_all"])
    e = BEAT2Dataset(root, "train", **kw, vocab=d.vocab[:5])
    assert e.cache_stats == {"hit": 0, "miss": 2}   # a setting changed
    entry = e.cache_folder("1_ada_0_1_1")
    assert [p.name for p in entry.parent.iterdir()] == [entry.name]                 # the stale entries were removed


def _damage(root):
    ids = list(read_split_csv(root / "train_test_split.csv"))
    p = beat2_paths
    m = p(root, ids[0])["motion"]
    m.write_bytes(m.read_bytes()[: m.stat().st_size // 3])
    z = dict(np.load(p(root, ids[1])["motion"]))
    z["mocap_frame_rate"] = np.int64(60)
    with open(p(root, ids[1])["motion"], "wb") as f: np.savez(f, **z)
    p(root, ids[2])["audio"].unlink()
    p(root, ids[3])["text"].unlink()
    write_beat2_wav(p(root, ids[4])["audio"], np.zeros(16000 * 2, np.float32))
    z = dict(np.load(p(root, ids[5])["motion"]))
    z["expressions"] = np.array([[None] * 100] * len(z["poses"]), dtype=object)
    with open(p(root, ids[5])["motion"], "wb") as f: np.savez(f, **z)
    return ids


def test_each_bad_file_named(tmp_path, beat2_tiny):
    root = Path(shutil.copytree(beat2_tiny, tmp_path / "bad"))
    ids = _damage(root)
    probs, stats = check_dataset(root)
    errors = [p.message for p in probs if p.level == "error"]
    for id, ext, needle in [(ids[0], ".npz", "truncated"), (ids[1], ".npz", "recorded at mocap_frame_rate = 60 fps, expected 30"),
                            (ids[2], ".wav", "missing"), (ids[3], ".TextGrid", "TextGrid not found"),
                            (ids[4], ".npz", "length mismatch"), (ids[5], ".npz", "expressions holds Python objects (a pickle)")]:
        assert any(id + ext in e and needle in e for e in errors), (id, needle, errors)
    assert sum(v for k, v in stats.items() if k.endswith("valid")) == 2
    # the loader stops at the first bad recording of a split, naming it
    with pytest.raises(BEAT2DataError, match=ids[0] + r"\.npz: truncated"):
        BEAT2Dataset(root, "train", speakers=["ada"], window=30, vocab=["", "<unk>"])


def test_cli_synth_and_check(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    r = subprocess.run([sys.executable, "-m", "speechface.cli", "synth", "--preset", "beat2-tiny", "--out", str(tmp_path / "c"), "--quiet"],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 0 and "wrote 8 recordings of 2 speakers" in r.stdout, r.stderr
    r = subprocess.run([sys.executable, "-m", "speechface.cli", "check-data", str(tmp_path / "c"), "--dataset", "beat2"],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 0 and "OK: no problems found" in r.stdout, r.stdout + r.stderr
    beat2_paths(tmp_path / "c", "2_ben_0_4_4")["audio"].unlink()
    r = subprocess.run([sys.executable, "-m", "speechface.cli", "check-data", str(tmp_path / "c")], capture_output=True, text=True, env=env)
    assert r.returncode == 1 and "2_ben_0_4_4.wav" in r.stdout, r.stdout
