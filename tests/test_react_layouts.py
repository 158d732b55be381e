"""REACT2024 corpora in the release's own layouts, each quirk of issue 31 as a fixture: video as folders of numbered
frames (and .mp4), RECOLA's and NoXI's role-named emotion files, the float64 neighbour matrix, 751-frame clips scored
on their first 750, the FaceVerse mean face, and the baseline's 78-d MFCC. No code of the official repositories is
needed: the MFCC reference values below were printed by the official `extract_audio_features` on the same signal."""
import os
import shutil

import numpy as np
import pytest
import soundfile as sf

from speechface.data.check import check_react
from speechface.data.dyadic import cached_dyadic_corpus
from speechface.data.react import (MAX_VIDEO_FRAMES, REACT_AUDIO_SR, REACT_EVAL_FRAMES, REACT_FPS, REACT_FRAMES,
                                   REACTDataError, REACTDataset, appropriateness_path, list_video_frames,
                                   load_appropriateness, react_mfcc78, react_paths, read_video_frames, video_source,
                                   write_pairs_csv, write_react_sequence, write_video_frames)
from speechface.evaluation.react import react_split

PAIRS = [("NoXI/010_2016-03-25_Paris/Expert_video/1", "NoXI/010_2016-03-25_Paris/Novice_video/1"),
         ("RECOLA/group-1/P25/1", "RECOLA/group-1/P26/1"),
         ("RECOLA/group-2/P41/2", "RECOLA/group-2/P42/2"),
         ("RECOLA/group-3/P46/3", "RECOLA/group-3/P45/3")]
ROLE = {"Expert_video": "P1", "Novice_video": "P2", "P25": "P1", "P41": "P1", "P45": "P1", "P26": "P2", "P42": "P2", "P46": "P2"}
FRAME = 8   # px: tiny frames keep the fixture fast (the release's are 256 x 256; any size loads)


def _release(root, split="val", pairs=PAIRS, T=REACT_FRAMES):
    "A miniature release: 751-frame clips, frame folders, role-named emotion files, a float64 matrix, a mean face."
    rng = np.random.default_rng(0)
    for j, seq in enumerate(sorted({s for p in pairs for s in p})):
        emo = np.concatenate([rng.integers(0, 2, (T, 15)), rng.uniform(-1, 1, (T, 2)), rng.dirichlet(np.ones(8), T)], 1)
        p = write_react_sequence(root, split, seq, emo, rng.normal(size=(T, 58)), 0.05 * rng.standard_normal(T * 1764))
        e = p["emotion"]
        alias = e.parent.parent / ROLE[e.parent.name]                 # Emotion/<site>/<chat>/P1/<clip>.csv
        alias.mkdir(exist_ok=True)
        e.rename(alias / e.name)
        write_video_frames(p["video"], np.full((T, FRAME, FRAME, 3), 30 * j, np.uint8))
    write_pairs_csv(root / f"{split}.csv", pairs)
    np.save(appropriateness_path(root, split), np.eye(2 * len(pairs)))                  # float64, as matrix_split.py writes
    return root


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    root = _release(tmp_path_factory.mktemp("react") / "data")
    _release(root, "train", PAIRS[:2])
    return root


def test_release_layout_loads_with_every_quirk(release):
    mean = np.linspace(-1, 1, 58).astype(np.float32)
    ds = REACTDataset(release, "val", ("emotion", "3dmm", "audio", "video"), audio="mfcc78", video="frames", mean_face=mean)
    assert len(ds) == 8 and ds.samples[4] == PAIRS[0][::-1]                             # the 2N mirrored order
    it = ds[3]                                                                          # RECOLA P46 -> P2, P45 -> P1
    assert it["speaker_video"].shape == (REACT_FRAMES, FRAME, FRAME, 3)
    assert it["speaker_audio"].shape == (REACT_FRAMES, 78) and it["listener_emotion"].shape == (REACT_FRAMES, 25)
    raw = REACTDataset(release, "val", ("3dmm",))[3]["speaker_3dmm"].numpy()             # no mean face unless passed
    np.testing.assert_array_equal(it["speaker_3dmm"].numpy(), raw - mean)
    assert REACTDataset(release, "val", ("video",))[0]["listener_video"].endswith("Novice_video/1")


def test_float64_neighbour_matrix_and_dyadic_corpus_dtype(release):
    assert np.load(appropriateness_path(release, "val")).dtype == np.float64
    assert load_appropriateness(appropriateness_path(release, "val"), 8).dtype == bool
    dy = cached_dyadic_corpus("tiny")
    assert np.load(appropriateness_path(dy, "val")).dtype == np.float64                 # what the official tools write
    np.testing.assert_array_equal(np.load(dy / "FaceVerse" / "mean_face.npy"), np.zeros(58, np.float32))
    seq = REACTDataset(dy, "val", ("video",), n_frames=251).samples[0][0]
    assert len(list_video_frames(video_source(react_paths(dy, "val", seq)["video"]), 251)) == 251


def test_evaluation_scores_the_first_750_of_751_frames(release):
    d = react_split(release, "val")
    assert REACT_EVAL_FRAMES == 750 and d.n_frames == 750 and d.train_listener_emotion.shape[1] == 750
    whole = react_split(release, "val", n_frames=None)
    assert whole.n_frames == 751
    np.testing.assert_array_equal(d.listener_emotion, whole.listener_emotion[:, :750])


def test_check_data_counts_frames_per_clip(release, tmp_path):
    probs, st = check_react(release, splits=("val",))
    assert [p for p in probs if p.level == "error"] == [] and (st["val videos"], st["val video frames"]) == (8, 8 * 751)
    bad = shutil.copytree(release, tmp_path / "bad")
    os.remove(react_paths(bad, "val", PAIRS[1][0])["video"] / "751.png")
    probs, st = check_react(bad, splits=("val",))
    assert any("has 750 frames, the clip 751" in p.message for p in probs) and st["val videos"] == 7
    shutil.rmtree(bad / "val" / "Video_files")
    probs, _ = check_react(bad, splits=("val",))
    assert [p.level for p in probs] == ["warning"] and "official REACT2024 ReactionDataset" in probs[0].message


def test_mp4_is_accepted_beside_frame_folders(release, tmp_path):
    import imageio_ffmpeg
    root = shutil.copytree(release, tmp_path / "mp4")
    folder = react_paths(root, "val", PAIRS[0][0])["video"]
    shutil.rmtree(folder)
    w = imageio_ffmpeg.write_frames(str(folder) + ".mp4", (16, 16), fps=REACT_FPS, macro_block_size=1)
    w.send(None)
    for _ in range(REACT_FRAMES): w.send(np.zeros((16, 16, 3), np.uint8).tobytes())
    w.close()
    it = REACTDataset(root, "val", ("emotion", "video"), video="frames", clip_length=40)[0]
    assert it["speaker_video"].shape == (40, 16, 16, 3)
    probs, st = check_react(root, splits=("val",))
    assert not [p for p in probs if p.level == "error"] and st["val videos"] == 8


@pytest.mark.parametrize("name, needle", [("7.png.bak", "is not a frame"), ("٣.png", "is not a frame"),
                                          ("01.png", "frame 1 is also"), ("leak.png", "is not a frame")])
def test_hostile_frame_names_are_refused(tmp_path, name, needle):
    d = write_video_frames(tmp_path / "clip", np.zeros((3, 4, 4, 3), np.uint8))
    (d / name).write_bytes((d / "1.png").read_bytes())
    with pytest.raises(REACTDataError, match=needle):
        list_video_frames(d)


def test_hostile_frame_files_are_refused(tmp_path, monkeypatch):
    d = write_video_frames(tmp_path / "clip", np.zeros((3, 4, 4, 3), np.uint8))
    os.remove(d / "3.png")
    os.symlink("/etc/hostname", d / "3.png")
    with pytest.raises(REACTDataError, match="leads outside"): list_video_frames(d)
    os.remove(d / "3.png")
    os.mkfifo(d / "3.png")
    with pytest.raises(REACTDataError, match="FIFO"): list_video_frames(d)               # named, never opened
    os.remove(d / "3.png")
    os.symlink("1.png", d / "3.png")
    assert len(list_video_frames(d, 3)) == 3                                            # a link inside the folder is fine
    monkeypatch.setattr("speechface.data.react.MAX_VIDEO_FRAMES", 2)
    with pytest.raises(REACTDataError, match="more than 2 entries"): list_video_frames(d)
    monkeypatch.setenv("SPEECHFACE_MEMORY_BUDGET", "10")
    with pytest.raises(REACTDataError, match="memory budget"): read_video_frames([d / "1.png", d / "2.png"])
    assert MAX_VIDEO_FRAMES >= REACT_FRAMES


def test_frames_of_another_size_and_missing_video(release, tmp_path):
    d = write_video_frames(tmp_path / "clip", np.zeros((2, 4, 4, 3), np.uint8))
    write_video_frames(tmp_path / "other", np.zeros((1, 5, 4, 3), np.uint8))
    with pytest.raises(REACTDataError, match="is 4x5 px but the clip's first frame is 4x4"):
        read_video_frames([d / "1.png", tmp_path / "other" / "1.png"])
    root = shutil.copytree(release, tmp_path / "novideo")
    shutil.rmtree(react_paths(root, "val", PAIRS[2][1])["video"])
    with pytest.raises(REACTDataError, match=r"1 file\(s\) named by the pairs are missing.*P42/2/ \(frames 1.png"):
        REACTDataset(root, "val", ("emotion", "video"))


def test_mfcc78_matches_the_official_extraction(tmp_path):
    t = np.arange(6 * 1764) / REACT_AUDIO_SR
    x = 0.25 * np.sin(2 * np.pi * (200 + 400 * t) * t) * (t > 0.05)                     # silence, then a chirp
    sf.write(tmp_path / "chirp.wav", x, REACT_AUDIO_SR, subtype="PCM_16")
    w, _ = sf.read(tmp_path / "chirp.wav")
    m = react_mfcc78(w, 6)
    official_abs_sum = [1.2e-03, 646.4811, 801.2797, 879.9501, 927.3276, 990.7964]      # per frame, sum |x| of 78
    official_cols = [[0.0, 0.0, 1e-05, -7e-05, 0.0], [3.00702, 3.53645, 25.44924, -27.92615, 0.15883],
                     [3.55736, 3.5454, 27.53834, -27.99317, -0.00359], [3.5471, 3.52824, 27.56397, -36.2632, -0.00566],
                     [3.53373, 3.53914, 28.24927, -35.31216, 0.00162], [3.53721, 3.5394, 29.82998, -25.33688, 0.00066]]
    np.testing.assert_allclose(np.abs(m).sum(1), official_abs_sum, atol=1e-3)
    np.testing.assert_allclose(m[:, [0, 1, 2, 25, 26]], official_cols, atol=2e-4)
