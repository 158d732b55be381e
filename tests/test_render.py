"""Rendering and video: frames are never blank, bad input fails loudly, MP4s hold the right frames and the speech."""
import subprocess, sys, warnings

import numpy as np
import pytest

from speechface.viz import render
from speechface.viz.render import (BlankFrameError, OpenGLUnavailableError, RenderInputError, check_frame,
                                   render_frames, render_sequence, resolve_backend)
from speechface.viz.video import (AUDIO_SR, animate_to_video, extract_audio, ffmpeg_exe, side_by_side, video_info,
                                  write_video)

BACKENDS = ["pyrender", "matplotlib"]


@pytest.fixture(scope="module")
def corpus(tiny_corpus):
    root = tiny_corpus
    stem = "synth_f1_sentence01"
    return {"root": root, "faces": np.load(root / "faces.npy"), "seq": np.load(root / f"vertices_npy/{stem}.npy"),
            "wav": root / f"wav/{stem}.wav"}


def pixel_stats(img, background=255):
    "Foreground fraction (pixels differing from a white background) and pixel standard deviation, computed here."
    fg = (np.abs(img.astype(int) - background).max(-1) > 8).mean()
    return fg, img.std()


@pytest.mark.parametrize("backend", BACKENDS)
def test_rendered_frame_is_not_blank(corpus, backend):
    frames = render_sequence(corpus["seq"][:3], corpus["faces"], backend, size=128)
    assert frames.shape == (3, 128, 128, 3) and frames.dtype == np.uint8
    for img in frames:
        fg, std = pixel_stats(img)
        assert fg > 0.15, f"{backend}: the head covers only {fg:.1%} of the frame"
        assert std > 20, f"{backend}: pixel std {std:.1f}, the frame is nearly uniform"


def test_backends_share_the_framing(corpus):
    gl, mpl = (render_sequence(corpus["seq"][:1], corpus["faces"], b, size=128)[0] for b in BACKENDS)
    assert abs(pixel_stats(gl)[0] - pixel_stats(mpl)[0]) < 0.05


def test_check_frame_rejects_black_and_empty_frames():
    with pytest.raises(BlankFrameError, match="blank"): check_frame(np.zeros((64, 64, 3), np.uint8))
    with pytest.raises(BlankFrameError, match="blank"): check_frame(np.full((64, 64, 3), 255, np.uint8))
    with pytest.raises(BlankFrameError, match="blank"):                       # black on black is blank too
        check_frame(np.zeros((64, 64, 3), np.uint8), background=(0.0, 0.0, 0.0))


@pytest.mark.parametrize("backend", BACKENDS)
def test_nan_vertices_raise_and_write_nothing(corpus, backend, tmp_path):
    seq = corpus["seq"][:4].copy()
    seq[2, 30] = np.nan
    with pytest.raises(RenderInputError, match="frame 2"): render_sequence(seq, corpus["faces"], backend, size=64)
    out = tmp_path / "nan.mp4"
    with pytest.raises(RenderInputError): write_video(render_frames(seq, corpus["faces"], backend, size=64), 30, out)
    assert not out.exists() and not list(tmp_path.iterdir()), "no partial file may be left behind"


@pytest.mark.parametrize("backend", BACKENDS)
def test_collapsed_or_unframed_vertices_raise(corpus, backend, tmp_path):
    faces, seq = corpus["faces"], corpus["seq"][:4]
    with pytest.raises(RenderInputError, match="one point"):                  # the whole sequence at one point
        render_sequence(np.zeros_like(seq), faces, backend, size=64)
    bad = seq.copy()
    bad[1] = np.tile(bad[1].reshape(-1, 3).mean(0), bad.shape[1] // 3)
    with pytest.raises(RenderInputError, match="one point"):                  # one frame collapsed
        render_sequence(bad, faces, backend, size=64)
    away = seq.copy()
    away[2] += 10.0                                        # one frame far outside the framing
    with pytest.raises(BlankFrameError, match="blank"):
        render_sequence(away, faces, backend, size=64, bounds=render.frame_bounds(seq))
    out = tmp_path / "away.mp4"
    with pytest.raises(BlankFrameError):
        write_video(render_frames(away, faces, backend, size=64, bounds=render.frame_bounds(seq)), 30, out)
    assert not out.exists() and not list(tmp_path.iterdir()), "no partial file may be left behind"


def test_mp4_has_frames_duration_and_audio(corpus, tmp_path):
    seq = corpus["seq"]
    T = len(seq)
    out = animate_to_video(seq, corpus["faces"], tmp_path / "f1.mp4", audio=corpus["wav"], fps=30, size=128)
    info = video_info(out)
    assert (info["video_codec"], info["pix_fmt"], info["width"], info["height"]) == ("h264", "yuv420p", 128, 128)
    assert info["n_frames"] == T
    assert abs(info["duration"] - T / 30) <= 1 / 30, info
    assert info["audio_codec"] == "aac" and info["audio_sr"] == AUDIO_SR
    err = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(out)], capture_output=True, text=True).stderr
    assert "Audio: aac" in err and "Video: h264" in err                     # the raw report, not only our parse


def test_missing_audio_fails_before_rendering(corpus, tmp_path):
    from speechface.data.audio import AudioFileError
    rendered = []
    def frames():
        for f in render_frames(corpus["seq"][:3], corpus["faces"], "matplotlib", size=32):
            rendered.append(1)
            yield f
    with pytest.raises(AudioFileError, match="file not found"):
        write_video(frames(), 30, tmp_path / "a.mp4", audio=tmp_path / "missing.wav")
    assert not rendered and not list(tmp_path.iterdir())


def test_audio_offset_is_sample_accurate(tmp_path):
    click = np.zeros(AUDIO_SR, np.float32)
    click[AUDIO_SR // 2: AUDIO_SR // 2 + 48] = 0.9
    frames = np.full((30, 16, 16, 3), 100, np.uint8)
    for offset in (0.1, -0.2):
        heard = extract_audio(write_video(frames, 30, tmp_path / "c.mp4", audio=(click, AUDIO_SR), audio_offset=offset))
        assert abs(np.argmax(np.abs(heard) > 0.3) / AUDIO_SR - (0.5 + offset)) < 2e-3
        assert abs(len(heard) / AUDIO_SR - 1.0) < 1 / 30                    # trimmed / padded to the 1 s picture


def test_odd_sizes_are_padded_to_even(tmp_path):
    out = write_video(np.full((3, 33, 47, 3), 90, np.uint8), 25, tmp_path / "odd.mp4")
    info = video_info(out)
    assert (info["width"], info["height"], info["n_frames"], info["audio_codec"]) == (48, 34, 3, None)


@pytest.mark.parametrize("backend", BACKENDS)
def test_side_by_side_frame_width(corpus, backend):
    seq = corpus["seq"][:2]
    frames = list(side_by_side({"GT": seq, "SFT": seq * 1.01, "RL": seq}, corpus["faces"], size=96, backend=backend))
    assert len(frames) == 2
    h, w, _ = frames[0].shape
    assert w == 3 * 96 and h > 96 and h % 2 == 0
    assert pixel_stats(frames[0][h - 96:, 96:192])[0] > 0.15              # the middle panel holds a head


def test_auto_falls_back_to_matplotlib_with_one_warning(monkeypatch):
    def no_gl(refresh=False): raise OpenGLUnavailableError("no GL here (test)")
    monkeypatch.setattr(render, "opengl_platform", no_gl)
    monkeypatch.setattr(render, "_FALLBACK_WARNED", False)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        assert resolve_backend("auto") == "matplotlib" and resolve_backend("auto") == "matplotlib"
    msgs = [str(x.message) for x in w if issubclass(x.category, RuntimeWarning)]
    assert len(msgs) == 1 and "falling back to the matplotlib renderer" in msgs[0] and "no GL here" in msgs[0]
    with pytest.raises(OpenGLUnavailableError): resolve_backend("pyrender")  # an explicit request never falls back
    with warnings.catch_warnings():
        warnings.simplefilter("error")                                        # 'matplotlib' asked for: no warning
        assert resolve_backend("matplotlib") == "matplotlib"


def test_unusable_platform_error_names_the_fix():
    code = ("from speechface.viz.render import opengl_platform\n"
            "try: opengl_platform()\n"
            "except Exception as e: print(type(e).__name__, e)\n")
    env = {"PYOPENGL_PLATFORM": "no-such-platform", "PATH": "/usr/bin:/bin", "MPLBACKEND": "Agg"}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    msg = r.stdout
    assert msg.startswith("OpenGLUnavailableError"), msg + r.stderr
    for needle in ("PYOPENGL_PLATFORM=no-such-platform", "libegl1", "libosmesa6", "PyOpenGL>=3.1.7", "backend='matplotlib'"):
        assert needle in msg, f"{needle!r} missing from: {msg}"


def test_opengl_imported_too_early_is_explained():
    code = ("import pyrender\n"                                   # binds PyOpenGL to GLX before speechface can choose
            "from speechface.viz.render import opengl_platform\n"
            "try: opengl_platform()\n"
            "except Exception as e: print(type(e).__name__, e)\n")
    env = {"PATH": "/usr/bin:/bin", "MPLBACKEND": "Agg"}              # no DISPLAY, no PYOPENGL_PLATFORM
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert r.stdout.startswith("OpenGLUnavailableError") and "before speechface could choose" in r.stdout, r.stdout + r.stderr


def test_render_in_another_thread_after_the_main_one():
    "A notebook renders in its cells and again in a widget callback on another thread (ipykernel 7): both must work."
    import threading
    from speechface.data.head import build_head
    from speechface.viz.render import render_frames, resolve_backend
    if resolve_backend("auto") != "pyrender": pytest.skip("no OpenGL here: the matplotlib backend has no context to share")
    h = build_head(300)
    seq = np.repeat(h.vertices[None], 2, 0)
    first = list(render_frames(seq, h.faces, size=64))
    out = {}
    def work():
        try: out["frames"] = list(render_frames(seq, h.faces, size=64))
        except Exception as e: out["error"] = e
    t = threading.Thread(target=work)
    t.start()
    t.join()
    assert "error" not in out, out.get("error")
    np.testing.assert_array_equal(out["frames"][0], first[0])
