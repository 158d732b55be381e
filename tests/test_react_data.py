"""Hostile and truncated REACT2024 / OpenFace / Whisper inputs: each must fail with a `UserError` that names the file
and the fix, never load silently wrong; and the files our writers produce must be byte-for-byte the corpus' format."""
import io
import numpy as np
import pytest
import soundfile as sf

from speechface.core import UserError
from speechface.data.audio import AudioFileError
from speechface.data.react import (REACT_AUDIO_SR, REACT_FRAMES, REACTDataError, REACTDataset, load_appropriateness,
                                   read_3dmm_npy, read_emotion_csv, read_pairs_csv, read_react_wav, react_paths,
                                   write_3dmm_npy, write_emotion_csv, write_pairs_csv, write_react_sequence,
                                   write_video_frames)
from speechface.data.check import check_dataset, check_react
from speechface.data.openface import (OPENFACE_COLUMNS, OpenFaceError, openface_features, read_openface_csv,
                                      write_openface_csv)

RNG = np.random.default_rng(0)
EMO = np.concatenate([RNG.integers(0, 2, (REACT_FRAMES, 15)), RNG.uniform(-1, 1, (REACT_FRAMES, 2)),
                      RNG.dirichlet(np.ones(8), REACT_FRAMES)], 1).astype(np.float32)
FV = RNG.normal(size=(REACT_FRAMES, 58)).astype(np.float32)
FRAMES = np.zeros((REACT_FRAMES, 2, 2, 3), np.uint8)
PAIRS = [("NoXI/065_2016-04-14_Nottingham/Expert_video/1", "NoXI/065_2016-04-14_Nottingham/Novice_video/1"),
         ("UDIVA/talk/FC1_T/2", "UDIVA/talk/FC2_T/2")]


def _raises(fn, path, *needles, cls=REACTDataError):
    with pytest.raises(cls) as e: fn()
    msg = str(e.value)
    assert isinstance(e.value, UserError), type(e.value)
    assert str(path) in msg, f"message does not name the file: {msg}"
    for n in needles: assert n in msg, f"{n!r} not in: {msg}"
    return msg


@pytest.fixture
def corpus(tmp_path):
    "A byte-exact miniature of the real layout: val split, 2 pairs, header-row csvs, (751,1,58) float32, 44.1 kHz wavs, frame folders."
    root = tmp_path / "react"
    for s, l in PAIRS:
        for seq in (s, l):
            write_react_sequence(root, "val", seq, EMO, FV, 0.05 * RNG.standard_normal(REACT_FRAMES * REACT_AUDIO_SR // 25))
            write_video_frames(react_paths(root, "val", seq)["video"], FRAMES)   # the release's frame folders, 2 x 2 px
    write_pairs_csv(root / "val.csv", PAIRS)
    np.save(root / "neighbour_emotion_val.npy", np.eye(4))
    return root


# ---------------------------------------------------------------- the real format, byte for byte
def test_written_files_are_the_corpus_format(corpus):
    p = react_paths(corpus, "val", PAIRS[0][0])
    ref = io.BytesIO()
    np.save(ref, FV[:, None, :].astype(np.float32))
    assert p["3dmm"].read_bytes() == ref.getvalue()                       # exactly np.save of (751, 1, 58) float32
    lines = p["emotion"].read_text().splitlines()
    assert len(lines) == 1 + REACT_FRAMES and len(lines[0].split(",")) == 25 and not lines[0][0].isdigit()
    info = sf.info(p["audio"])
    assert (info.samplerate, info.channels, info.frames) == (44100, 1, 751 * 44100 // 25)
    assert (corpus / "val.csv").read_text().splitlines()[0] == ",speaker_path,listener_path"
    pd = pytest.importorskip("pandas")
    got = pd.read_csv(p["emotion"], header=None).drop(0).to_numpy().astype(np.float32)   # the baseline's reader
    np.testing.assert_allclose(got, EMO, atol=1e-6)
    assert check_react(corpus) == ([], {"dataset": "react", "val pairs": 2, "val sequences": 4, "val valid": 4, "val videos": 4,
                                   "val video frames": 4 * REACT_FRAMES})


def test_dataset_mirrors_and_windows(corpus):
    ds = REACTDataset(corpus, "val", clip_length=100, random_crop=True, seed=3)
    assert len(ds) == 4 and [ds[i]["speaker"] for i in range(4)] == [PAIRS[0][0], PAIRS[1][0], PAIRS[0][1], PAIRS[1][1]]
    it = ds[2]
    a = it["start"]
    np.testing.assert_array_equal(it["speaker_emotion"].numpy(), EMO[a:a + 100])
    np.testing.assert_array_equal(it["listener_3dmm"].numpy(), FV[a:a + 100])
    assert it["speaker_audio"].shape == (100 * 16000 // 25,)
    assert REACTDataset(corpus, "val", mirror=False).__len__() == 2
    mf = RNG.normal(size=58).astype(np.float32)
    np.testing.assert_allclose(REACTDataset(corpus, "val", mean_face=mf)[0]["speaker_3dmm"].numpy(), FV - mf, atol=1e-6)


# ---------------------------------------------------------------- 3DMM npy
@pytest.mark.parametrize("cut", [5, 60, 127, 1000, 43000])
def test_truncated_npy(tmp_path, cut):
    f = write_3dmm_npy(tmp_path / "c.npy", FV)
    f.write_bytes(f.read_bytes()[:cut])
    _raises(lambda: read_3dmm_npy(f), f, "truncated", "copy the file again")


@pytest.mark.parametrize("shape", [(751, 58, 1), (751, 2, 58), (751,), (751, 57), (2, 751, 1, 58)])
def test_npy_wrong_shape(tmp_path, shape):
    f = tmp_path / "c.npy"
    np.save(f, np.zeros(shape, np.float32))
    _raises(lambda: read_3dmm_npy(f), f, f"shape {shape}", "(T, 1, 58)")


def test_npy_pickle_nan_and_length(tmp_path):
    f = tmp_path / "c.npy"
    np.save(f, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    _raises(lambda: read_3dmm_npy(f), f, "pickle")
    x = FV.copy()
    x[10, 3] = np.nan
    write_3dmm_npy(f, x)
    _raises(lambda: read_3dmm_npy(f), f, "NaN", "frame 10")
    write_3dmm_npy(f, FV[:700])
    _raises(lambda: read_3dmm_npy(f, REACT_FRAMES), f, "700 frames, expected 751")
    (tmp_path / "t.npy").write_text("not numpy at all")
    _raises(lambda: read_3dmm_npy(tmp_path / "t.npy"), tmp_path / "t.npy", "(T, 1, 58)")


# ---------------------------------------------------------------- emotion csv
def test_emotion_csv_hostile(tmp_path):
    good = write_emotion_csv(tmp_path / "good.csv", EMO).read_text().splitlines()
    cases = {
        "nohead": ("\n".join(good[1:]), ["header row is missing"]),
        "cols": ("\n".join(good[:5] + [good[5] + ",0.5"] + good[6:]), ["line 6 has 26 columns, expected 25"]),
        "text": ("\n".join(good[:3] + [good[3].rsplit(",", 1)[0] + ",abc"] + good[4:]),
                 ["line 4, column 25 (Contempt) is 'abc', not a number"]),
        "nan": ("\n".join(good[:2] + ["nan" + good[2][good[2].index(","):]] + good[3:]), ["NaN/inf", "line 3, column 1 (AU1)"]),
        "empty": ("", ["empty"]),
        "headonly": (good[0] + "\n", ["no data rows"]),
    }
    for name, (text, needles) in cases.items():
        f = tmp_path / f"{name}.csv"
        f.write_text(text)
        _raises(lambda: read_emotion_csv(f), f, *needles)
    f = tmp_path / "short.csv"
    f.write_text("\n".join(good[:100]))
    _raises(lambda: read_emotion_csv(f, REACT_FRAMES), f, "99 frames, expected 751")
    _raises(lambda: read_emotion_csv(tmp_path / "none.csv"), tmp_path / "none.csv", "not found")


# ---------------------------------------------------------------- wav
def test_wav_wrong_rate_and_truncated(tmp_path, corpus):
    f = tmp_path / "a.wav"
    sf.write(f, np.zeros(48000, np.float32), 48000)
    _raises(lambda: read_react_wav(f), f, "48000 Hz", "44100 Hz", "expected_sr=None")
    assert read_react_wav(f, expected_sr=None).shape == (16000,)
    w = react_paths(corpus, "val", PAIRS[1][1])["audio"]
    w.write_bytes(w.read_bytes()[:len(w.read_bytes()) // 2])
    _raises(lambda: REACTDataset(corpus, "val")[1], w, "truncated", cls=AudioFileError)
    probs, _ = check_react(corpus)
    assert [p.path for p in probs] == [str(w)] and "truncated" in probs[0].message


# ---------------------------------------------------------------- pairs, missing files, appropriateness
def test_pairs_pointing_at_missing_files(corpus):
    gone = [react_paths(corpus, "val", PAIRS[0][1])["3dmm"], react_paths(corpus, "val", PAIRS[1][0])["emotion"],
            react_paths(corpus, "val", PAIRS[1][1])["audio"]]
    for g in gone: g.unlink()
    msg = _raises(lambda: REACTDataset(corpus, "val"), corpus / "val.csv", "3 file(s)", "check-data --dataset react")
    for g in gone: assert str(g) in msg
    probs, stats = check_react(corpus)
    assert sorted(p.path for p in probs) == sorted(map(str, gone)) and stats["val valid"] == 1


def test_pairs_csv_hostile(tmp_path):
    cases = {"a.csv": (",speaker,listener\n0,x/y/z/1,x/y/w/1\n", "without 'speaker_path'"),
             "b.csv": (",speaker_path,listener_path\n0,x/y/z/1\n", "line 2 has 2 columns"),
             "c.csv": (",speaker_path,listener_path\n0,/etc/passwd,x/y/w/1\n", "not a relative sequence path"),
             "d.csv": (",speaker_path,listener_path\n0,../../x,x/y/w/1\n", "not a relative sequence path"),
             "e.csv": (",speaker_path,listener_path\n", "no pairs")}
    for name, (text, needle) in cases.items():
        f = tmp_path / name
        f.write_text(text)
        _raises(lambda: read_pairs_csv(f), f, needle)


def test_appropriateness_hostile(tmp_path, corpus):
    f = tmp_path / "m.npy"
    for arr, needle in ((np.ones((4, 3)), "not square"), (np.full((4, 4), 0.5), "other than 0 and 1"),
                        (np.eye(6), "pairs give 4")):
        np.save(f, arr)
        _raises(lambda: load_appropriateness(f, 4), f, needle)
    m = np.eye(4)
    m[2, 2] = 0
    np.save(corpus / "neighbour_emotion_val.npy", m)
    probs, _ = check_react(corpus)
    assert len(probs) == 1 and "rows [2]" in probs[0].message


def test_length_mismatch_and_clip_too_long(corpus):
    write_3dmm_npy(react_paths(corpus, "val", PAIRS[0][0])["3dmm"], FV[:700])
    ds = REACTDataset(corpus, "val", n_frames=None)
    _raises(lambda: ds[0], react_paths(corpus, "val", PAIRS[0][0])["3dmm"], "700", "same clip")
    with pytest.raises(REACTDataError, match="clip_length=800"): REACTDataset(corpus, "val", clip_length=800)[1]
    probs, _ = check_dataset(corpus, "react")                              # via the general entry point
    assert len(probs) == 1 and "700 frames, expected 751" in probs[0].message


def test_check_lists_every_problem_of_one_sequence(corpus):
    p = react_paths(corpus, "val", PAIRS[0][0])
    p["emotion"].write_text("1,2,3\n")
    np.save(p["3dmm"], np.zeros((751, 57), np.float32))
    sf.write(p["audio"], np.zeros(44100, np.float32), 44100)             # 1 s of audio for 30 s of motion
    probs, _ = check_react(corpus)
    assert sorted(x.path for x in probs) == sorted(map(str, (p["emotion"], p["3dmm"], p["audio"])))
    assert any("lasts 1.00 s" in x.message for x in probs)
    assert check_react(corpus.parent / "nope")[0][0].message.endswith("folder does not exist")


# ---------------------------------------------------------------- OpenFace
def _face(T=50, fps=30.):
    t = np.arange(T) / fps
    return {**{f"x_{i}": 100 + t for i in range(68)}, **{f"y_{i}": 90 + t for i in range(68)}, "timestamp": t}


def test_openface_header_with_and_without_spaces(tmp_path):
    a = write_openface_csv(tmp_path / "a.csv", _face())
    b = write_openface_csv(tmp_path / "b.csv", _face(), sep=",")
    assert a.read_text().startswith("frame, face_id, timestamp, confidence, success, gaze_0_x")
    ra, rb = read_openface_csv(a), read_openface_csv(b)
    assert tuple(ra.columns) == tuple(rb.columns) == OPENFACE_COLUMNS
    np.testing.assert_array_equal(ra["x_3"], rb["x_3"])


def test_openface_gating(tmp_path):
    face = _face()
    face["success"] = np.ones(50)
    face["success"][10:30] = 0
    face["confidence"] = np.full(50, 0.95)
    face["confidence"][40] = 0.3
    fr = read_openface_csv(write_openface_csv(tmp_path / "g.csv", face, fps=30))
    assert fr.valid.sum() == 50 - 21
    feat = openface_features(fr)
    t = np.arange(len(feat.valid)) / 25
    assert not feat.valid[(t > 10 / 30) & (t < 29 / 30)].any()              # the 0.67 s dropout stays masked
    assert (feat.features[~feat.valid] == 0).all() and feat.report["invalid input frames"] == 21


def test_openface_hostile(tmp_path):
    f = write_openface_csv(tmp_path / "o.csv", _face())
    lines = f.read_text().splitlines()
    (tmp_path / "cut.csv").write_text("\n".join(lines[:-1] + [lines[-1][:50]]))
    _raises(lambda: read_openface_csv(tmp_path / "cut.csv"), tmp_path / "cut.csv", "truncated", cls=OpenFaceError)
    (tmp_path / "img.csv").write_text("face, confidence\n0, 0.9\n")
    _raises(lambda: read_openface_csv(tmp_path / "img.csv"), tmp_path / "img.csv", "not an OpenFace sequence CSV", cls=OpenFaceError)
    face = _face()
    face["face_id"] = np.arange(50) % 2
    m = write_openface_csv(tmp_path / "multi.csv", face)
    _raises(lambda: read_openface_csv(m), m, "pass face_id", cls=OpenFaceError)
    assert len(read_openface_csv(m, face_id=1)) == 25
    face = _face()
    face["timestamp"] = face["timestamp"][::-1]
    r = write_openface_csv(tmp_path / "rev.csv", face)
    _raises(lambda: read_openface_csv(r), r, "not strictly increasing", cls=OpenFaceError)


# ---------------------------------------------------------------- Whisper
def test_whisper_exact_frames_and_offline_errors(tmp_path):
    import torch
    from speechface.models.audio_encoder import AudioEncoderUnavailable
    from speechface.models.whisper import WhisperFeatures
    torch.set_num_threads(1)
    wf = WhisperFeatures(tiny=True)
    for n, T in ((44100 * 3 + 17, 75), (44100 * 3 + 17, 76), (22050, 12)):
        assert wf(RNG.standard_normal(n).astype(np.float32) * 0.1, T, sr=44100).shape == (T, 64)
    with pytest.raises(ValueError, match="at least"): wf(np.zeros(100, np.float32), 1)
    with pytest.raises(AudioEncoderUnavailable, match="SPEECHFACE_WHISPER_DIR|save_pretrained"):
        WhisperFeatures(whisper_dir=tmp_path / "missing")


# ---------------------------------------------------------------- the OpenFace modality (our layout extension)
def _write_openface(root, n=REACT_FRAMES, success=None):
    for s, l in PAIRS:
        for seq in (s, l):
            cols = {f"y_{i}": np.linspace(40, 180, 68)[i] + np.sin(np.arange(n) / 10) for i in range(68)}
            if success is not None: cols["success"] = success
            write_openface_csv(react_paths(root, "val", seq)["openface"], cols)


def test_openface_modality_shapes_mask_and_mirror(corpus):
    succ = np.ones(REACT_FRAMES)
    succ[300:320] = 0
    _write_openface(corpus, success=succ)
    ds = REACTDataset(corpus, "val", modalities=("3dmm", "openface"), clip_length=400)
    it = ds[2]                                                                       # a mirrored sample
    assert it["speaker_openface"].shape == (400, 160) and str(it["speaker_openface"].dtype) == "torch.float32"
    assert it["listener_openface_mask"].shape == (400,) and str(it["listener_openface_mask"].dtype) == "torch.bool"
    assert int((~it["speaker_openface_mask"]).sum()) == 20 and not it["speaker_openface_mask"][300:320].any()
    y = it["speaker_openface"][:, 68:136].numpy()                                    # y_0..y_67 / 224, masked frames 0
    np.testing.assert_allclose(y[0], np.round(np.linspace(40, 180, 68), 1) / 224, atol=1e-6)
    assert (y[300:320] == 0).all()


def test_openface_missing_and_wrong_length(corpus):
    _write_openface(corpus)
    p = react_paths(corpus, "val", PAIRS[1][1])["openface"]
    p.unlink()
    msg = _raises(lambda: REACTDataset(corpus, "val", modalities=("emotion", "openface")), corpus / "val.csv", "1 file(s)")
    assert str(p) in msg
    REACTDataset(corpus, "val", modalities=("emotion",))                               # fine without the modality
    cols = {"x_0": np.zeros(500)}
    write_openface_csv(p, cols)
    ds = REACTDataset(corpus, "val", modalities=("emotion", "openface"))
    _raises(lambda: ds[1], p, "has 500 frames, but the clip has 751")
    p.write_text(", ".join(OPENFACE_COLUMNS[:20]) + "\n")                            # header only, no frames
    _raises(lambda: ds[1], p, "no frames", cls=OpenFaceError)
    probs, _ = check_react(corpus)
    assert [pr.level for pr in probs] == ["error"] and str(p) in probs[0].message
