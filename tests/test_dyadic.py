"Dyadic REACT2024-layout corpus: bad input, seeds, and the appropriateness rule against broken listeners."
import json

import numpy as np
import pytest

from speechface.core import UsageError
from speechface.data.dyadic import (APPROPRIATE_F1, DYADIC_PRESETS, DyadicPreset, appropriateness_matrix,
                                    cached_dyadic_corpus, generate_dyadic_corpus, make_dyads, match_f1)


@pytest.fixture(scope="module")
def dyadic_root():
    return cached_dyadic_corpus("tiny")


def test_unknown_preset_names_choices(tmp_path):
    with pytest.raises(UsageError, match="choose one of"):
        generate_dyadic_corpus(tmp_path, "huge", progress=False)


def test_seeds_differ():
    a, _ = make_dyads(DYADIC_PRESETS["tiny"], 0)
    b, _ = make_dyads(DYADIC_PRESETS["tiny"], 1)
    assert [p.voice for d in a for p in d.persons] != [p.voice for d in b for p in d.persons] or \
        [p.listening for d in a for p in d.persons] != [p.listening for d in b for p in d.persons]


def test_persons_unseen_across_splits():
    dyads, _ = make_dyads(DYADIC_PRESETS["full"], 0)
    chats = {s: {d.chat for d in dyads if d.split == s} for s in ("train", "val", "test")}
    assert not (chats["train"] & chats["val"]) and not (chats["train"] & chats["test"]) and not (chats["val"] & chats["test"])
    scripts = {s: {d.script for d in dyads if d.split == s} for s in chats}
    assert not (scripts["train"] & scripts["test"])        # a script never crosses splits


def _events(root, split):
    import pandas as pd
    pairs = pd.read_csv(root / f"{split}.csv", index_col=0)
    spk = list(pairs.speaker_path) + list(pairs.listener_path)
    lis = list(pairs.listener_path) + list(pairs.speaker_path)
    ann = lambda rel: json.loads((root / "annotations" / split / f"{rel}.json").read_text())
    return [ann(r)["triggers"] for r in spk], [ann(r)["reactions"] for r in lis]


def test_shifted_reactions_are_not_appropriate(dyadic_root):
    "Moving a true listener's reactions 1.5 s later breaks the rule match (it is not a lookup of who was paired)."
    trig, react = _events(dyadic_root, "train")
    scored = [(t, r) for t, r in zip(trig, react) if len(t) >= 2 and match_f1(t, r, 251 / 25) >= APPROPRIATE_F1]
    assert scored
    for t, r in scored:
        late = [dict(e, t=e["t"] + 1.5) for e in r]
        assert match_f1(t, late, 251 / 25) < APPROPRIATE_F1


def test_matrix_stable_under_listener_permutation(dyadic_root):
    "Scores depend on events only: permuting the listeners permutes the columns."
    trig, react = _events(dyadic_root, "val")
    a, s = appropriateness_matrix(trig, react, 251 / 25)
    perm = np.random.default_rng(0).permutation(len(react))
    a2, s2 = appropriateness_matrix(trig, [react[i] for i in perm], 251 / 25)
    np.testing.assert_allclose(s2, s[:, perm])


def test_custom_preset_frames(tmp_path):
    cfg = DyadicPreset((2, 0, 0), 101, clips=1)
    meta = generate_dyadic_corpus(tmp_path, cfg, seed=3, workers=1, progress=False)
    assert meta["splits"]["train"]["pairs"] == 2 and meta["splits"]["val"]["true_pairs_by_rule"] is None
    x = np.load(tmp_path / "train" / "3D_FV_files" / "NoXI" / "001_synth" / "P2" / "1.npy")
    assert x.shape == (101, 1, 58) and x.dtype == np.float32


# ---------------------------------------------------------------- OpenFace CSVs of the faces
from speechface.data.dyadic import (EXPRESSION_NAMES, LIP_CONTACT, face_vector, openface_frames,
                                    neutral_face, IBUG_MIRROR)
from speechface.data.openface import OPENFACE_COLUMNS, openface_features, read_openface_csv
from speechface.data.react import REACTDataset, read_3dmm_npy, read_emotion_csv, read_pairs_csv, react_paths


def _state(n=200, seed=0):
    rng = np.random.default_rng(seed)
    s = {k: np.zeros(n) for k in ("jaw", "round", "spread", "close", "labiodental", "loud", "smile", "brow", "blink",
                                  "pitch", "yaw", "roll", "tx", "ty", "tz")}
    s.update(jaw=np.clip(rng.normal(0.2, 0.2, n), 0, 1), close=np.full(n, 0.6), smile=np.clip(rng.normal(0.3, 0.3, n), 0, 1),
             pitch=rng.normal(0, 0.05, n), yaw=rng.normal(0, 0.05, n))
    s["close"][50:60] = 1.0
    return s


def test_openface_frames_seeded_and_state_untouched():
    s = _state()
    before = {k: v.copy() for k, v in s.items()}
    f = face_vector(s)
    a, b = openface_frames(s, f, seed=[1, 2], drop_rate=2.0), openface_frames(s, f, seed=[1, 2], drop_rate=2.0)
    assert all(np.array_equal(a[k], b[k]) for k in a)                                  # same seed, same columns
    assert all(np.array_equal(before[k], s[k]) for k in s)                             # dropouts zero copies, not the state
    lost = a["success"] == 0
    assert lost.any() and (a["x_30"][lost] == 0).all() and (a["confidence"][lost] == 0).all()
    c = openface_frames(s, f, seed=[1, 3], drop_rate=0, doubt_rate=0)
    assert not np.allclose(c["x_0"], a["x_0"]) and (c["success"] == 1).all()          # another person, another face
    assert set(a) <= set(OPENFACE_COLUMNS)


def test_lip_gap_sealed_and_pose(tmp_path):
    s = _state()
    f = face_vector(s)
    cols = openface_frames(s, f, seed=0, drop_rate=0, doubt_rate=0)
    gap = cols["y_66"] - cols["y_62"]
    assert np.abs(gap[50:60]).max() < 1e-6 and gap[(f[:, EXPRESSION_NAMES.index("jawOpen")] > 0.3) & (s["close"] < 1)].min() > 4
    np.testing.assert_array_equal(cols["pose_Rx"], s["pitch"])
    s2 = dict(s, pitch=s["pitch"] + 0.2)                                               # head down: the face moves down
    assert (openface_frames(s2, f, seed=0, drop_rate=0, doubt_rate=0)["y_30"] > cols["y_30"] + 5).all()
    from speechface.data.openface import write_openface_csv
    feats = openface_features(write_openface_csv(tmp_path / "a.csv", cols), n_frames=len(gap))
    assert feats.features.shape == (200, 160) and feats.valid.all()


def test_neutral_face_is_ibug_ordered():
    P = neutral_face()
    assert (IBUG_MIRROR[IBUG_MIRROR] == np.arange(68)).all()
    assert P[8, 1] == P[:17, 1].max() and P[30, 2] == P[:, 2].min()                      # chin lowest, nose tip nearest
    assert P[17:27, 1].max() < P[36:48, 1].min() < P[31:36, 1].min() < P[48:68, 1].min()  # brows, eyes, nose, mouth
    assert P[48, 0] < P[60, 0] < P[64, 0] < P[54, 0]                                     # corners: outer, inner


def test_corpus_openface_agrees_with_other_files(dyadic_root):
    split = "train"
    seq = read_pairs_csv(dyadic_root / f"{split}.csv")[0][0]
    p = react_paths(dyadic_root, split, seq)
    fr, fv, emo = read_openface_csv(p["openface"]), read_3dmm_npy(p["3dmm"]), read_emotion_csv(p["emotion"])
    assert len(fr) == len(fv) == 251
    ok = fr.valid
    jaw = fv[:, EXPRESSION_NAMES.index("jawOpen")]
    press = fv[:, EXPRESSION_NAMES.index("mouthPressLeft")]
    free = ok & (press <= LIP_CONTACT)
    assert np.corrcoef((fr["y_66"] - fr["y_62"])[free], jaw[free])[0, 1] > 0.9
    assert (fr["AU12_c"] == emo[:, 7]).mean() >= 0.95 and (fr["AU12_c"] == emo[:, 7])[ok].all()
    np.testing.assert_allclose(fr["pose_Rx"][ok], fv[ok, 52], atol=6e-4)
    meta = json.loads((dyadic_root / "metadata.json").read_text())
    assert "OpenFace" in meta["openface"]["layout"]
    it = REACTDataset(dyadic_root, split, modalities=("openface",), n_frames=251)[0]
    assert it["speaker_openface"].shape == (251, 160) and it["listener_openface_mask"].shape == (251,)


def test_openface_bytes_deterministic(tmp_path):
    cfg = DyadicPreset((1, 0, 0), 60, clips=1, dyads_per_script=1)
    for run in ("a", "b"): generate_dyadic_corpus(tmp_path / run, cfg, seed=5, workers=1, progress=False)
    files = sorted(q.relative_to(tmp_path / "a") for q in (tmp_path / "a" / "train" / "OpenFace").rglob("*.csv"))
    assert len(files) == 2
    assert all((tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes() for f in files)
    assert len(read_openface_csv(tmp_path / "a" / files[0])) == 60
