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
