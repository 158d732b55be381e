"REACT evaluation and dyadic rendering: broken corpora, broken generators, and the video's audio and length."
import shutil

import numpy as np
import pytest

from speechface.data.dyadic import cached_dyadic_corpus
from speechface.data.react import (appropriateness_path, react_paths, read_3dmm_npy, read_emotion_csv, write_3dmm_npy,
                                   write_emotion_csv)
from speechface.evaluation.react import REACTEvalError, evaluate_generator, react_split, react_table, rule_oracle
from speechface.viz.render import RenderInputError


@pytest.fixture(scope="module")
def dyadic_root():
    return cached_dyadic_corpus("tiny")


@pytest.fixture()
def corpus_copy(dyadic_root, tmp_path):
    dst = tmp_path / "corpus"
    shutil.copytree(dyadic_root, dst)
    return dst


def test_missing_appropriateness_names_the_file(corpus_copy):
    appropriateness_path(corpus_copy, "val").unlink()
    with pytest.raises(REACTEvalError, match="neighbour_emotion_val.npy"):
        react_split(corpus_copy, "val")


def test_clips_of_different_lengths_are_refused_unless_cut(corpus_copy):
    p = react_paths(corpus_copy, "val", "NoXI/005_synth/P1/2")
    write_emotion_csv(p["emotion"], read_emotion_csv(p["emotion"])[:200])
    write_3dmm_npy(p["3dmm"], read_3dmm_npy(p["3dmm"])[:200])
    with pytest.raises(REACTEvalError, match="n_frames=<shortest>"):
        react_split(corpus_copy, "val")
    assert react_split(corpus_copy, "val", n_frames=200).n_frames == 200


def test_rule_oracle_needs_annotations(corpus_copy):
    shutil.rmtree(corpus_copy / "annotations")
    with pytest.raises(REACTEvalError, match="annotation"):
        rule_oracle(react_split(corpus_copy, "val"), n_samples=2)


def test_generator_output_is_checked(dyadic_root):
    nan = lambda b: np.full((len(b["index"]), 10, b["speaker_emotion"].shape[1], 25), np.nan, np.float32)
    with pytest.raises(REACTEvalError, match="NaN"):
        evaluate_generator(nan, dyadic_root, "val", n_boot=0, baselines=())
    with pytest.raises(REACTEvalError, match="unknown baselines"):
        react_table({}, react_split(dyadic_root, "val"), baselines=("Oracle",))


def test_generator_sees_only_its_batch_and_seed_is_reproducible(dyadic_root):
    seen = []
    def gen(batch):
        seen.append(batch["index"].tolist())
        rng = np.random.default_rng(batch["seed"])
        return rng.random((len(batch["index"]), 3, batch["speaker_emotion"].shape[1], 25), dtype=np.float32)
    t1, p1 = evaluate_generator(gen, dyadic_root, "val", n_samples=3, batch_size=3, n_boot=0, baselines=("GT",))
    _, p2 = evaluate_generator(gen, dyadic_root, "val", n_samples=3, batch_size=3, n_boot=0, baselines=("GT",))
    assert seen[:3] == [[0, 1, 2], [3, 4, 5], [6, 7]]
    np.testing.assert_array_equal(p1, p2)
    assert t1.loc["GT", "FRC"] > t1.loc["generator", "FRC"]


def test_dyadic_video_silent_and_with_voices(dyadic_root, tmp_path):
    from speechface.viz.dyadic import dyadic_video
    from speechface.viz.video import video_info
    s, l = (read_3dmm_npy(react_paths(dyadic_root, "val", q)["3dmm"])[:12] for q in ("NoXI/005_synth/P1/1", "NoXI/005_synth/P2/1"))
    silent = video_info(dyadic_video(s, l, tmp_path / "a.mp4", size=64)["path"])
    assert silent["n_frames"] == 12 and silent["audio_codec"] is None
    wavs = [react_paths(dyadic_root, "val", q)["audio"] for q in ("NoXI/005_synth/P1/1", "NoXI/005_synth/P2/1")]
    voiced = video_info(dyadic_video(s, l, tmp_path / "b.mp4", audio=wavs, size=64)["path"])
    assert voiced["n_frames"] == 12 and voiced["audio_codec"] == "aac"


def test_face_vector_motion_rejects_bad_input():
    from speechface.data.head import build_head
    from speechface.viz.dyadic import face_vector_motion
    head = build_head(400)
    bad = np.zeros((4, 58))
    bad[2, 17] = np.nan
    with pytest.raises(RenderInputError, match="NaN/inf at frame 2"):
        face_vector_motion(head, bad)
    assert face_vector_motion(head, np.zeros(58)).shape == (1, 400, 3)
