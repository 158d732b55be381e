"""Streaming (`speechface.inference.stream`, `speechface stream`): a trained actor streamed with the whole stream as
lookahead is the offline actor; frames go out as JSON lines while the file is fed; memory stays bounded; misuse ends
in one line."""
import json

import numpy as np
import pytest
import torch

from speechface.core import load_checkpoint
from speechface.data.audio import load_wav, normalize_audio
from speechface.inference.stream import Streamer, encoder_lookahead_ms
from speechface.models.actor import load_actor
from test_animate_hostile import actor, animate, cli, one_line_error, wav  # noqa: F401  (the module-scoped tiny actor)


@pytest.fixture(scope="module")
def speech(tiny_corpus):
    "A corpus utterance: real synthetic speech."
    return tiny_corpus / "wav" / "synth_f1_sentence01.wav"


def offline_and_stream(ckpt, path, **kw):
    ck = load_checkpoint(ckpt)
    model = load_actor(ck).eval()
    tpl = torch.as_tensor(np.asarray(ck["templates"][ck["train_subjects"][0]]), dtype=torch.float32).reshape(-1)
    oh = torch.eye(len(ck["train_subjects"]))[0]
    x = load_wav(path)
    T = max(1, int(round(len(x) / 16000 * model.cfg.fps)))
    with torch.no_grad():
        off = model.predict(torch.from_numpy(np.asarray(normalize_audio(x), np.float32))[None], tpl[None], oh[None], n_frames=T)[0]
    st = Streamer(model, tpl, oh, **kw)
    out = [st.push(x[i:i + 640]) for i in range(0, len(x), 640)] + [st.finish()]
    return off.numpy(), np.concatenate(out), st, model


def test_whole_stream_lookahead_is_the_offline_actor(actor, speech):  # noqa: F811
    off, s, st, _ = offline_and_stream(actor, speech, lookahead_ms=None)
    assert s.shape == off.shape
    np.testing.assert_allclose(s, off, atol=1e-5 * np.abs(off).max())


def test_bounded_lookahead_emits_early_and_differs_only_in_the_encoder(actor, speech):  # noqa: F811
    off, s, st, model = offline_and_stream(actor, speech, lookahead_ms=160, window_frames=40)
    assert s.shape == off.shape
    assert st.caches[0]["k"].shape[2] <= 40                                    # the decoder's window
    assert len(st.buf) < 16000 * (encoder_lookahead_ms(model) / 1000 + 0.2)    # the audio kept: left context + lookahead + a chunk
    assert len(st.compute_s) == int(np.ceil(len(load_wav(speech)) / 640))


def test_stream_cli_jsonl_and_npy(actor, speech, tmp_path):  # noqa: F811
    r = cli("stream", speech, "--ckpt", actor, "--lookahead-ms", "whole", "--out", tmp_path / "m.npy", timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    m = np.load(tmp_path / "m.npy")
    r = animate(actor, speech, tmp_path / "offline.npy")
    assert r.returncode == 0, r.stderr[-2000:]
    np.testing.assert_allclose(m, np.load(tmp_path / "offline.npy"), atol=1e-5 * np.abs(m).max())
    r = cli("stream", speech, "--ckpt", actor, "--lookahead-ms", "120", "--chunk-ms", "20", "--out", "-", "--arkit", timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    assert [x["frame"] for x in lines] == list(range(len(m)))
    assert len(lines[0]["vertices"]) == m.shape[1] and len(lines[0]["arkit"]) == 52
    summary = json.loads(r.stderr.strip().splitlines()[-1])["summary"]
    assert summary["frames"] == len(m) and summary["compute_p95_ms"] > 0


@pytest.mark.parametrize("args,needles", [
    (["--lookahead-ms", "-5"], ["--lookahead-ms", "≥ 0"]),
    (["--out", "m.mp4"], ["stream writes .npy or .jsonl"]),
    (["--chunk-ms", "0"], ["--chunk-ms"]),
], ids=["negative_lookahead", "wrong_output", "zero_chunk"])
def test_stream_errors_are_one_line(actor, speech, tmp_path, args, needles):  # noqa: F811
    args = [str(tmp_path / a) if a.endswith(".mp4") else a for a in args]
    one_line_error(cli("stream", speech, "--ckpt", actor, *args), *needles)


STREAMABLE = ["model.audio.mel_lookahead=6", "model.audio.mel_causal_norm=true", "model.audio.nominal_alignment=true"]


@pytest.fixture(scope="module")
def streamable(tmp_path_factory, tiny_corpus):
    "A tiny actor trained with the mel encoder's streaming options (config keys, through `speechface train`)."
    from test_animate_hostile import TINY
    from speechface.train.settings import load_config
    from speechface.train.supervised import train
    tmp = tmp_path_factory.mktemp("streamable")
    (tmp / "tiny").symlink_to(tiny_corpus)
    train(load_config([f"dataset.root={tmp / 'tiny'}", f"out_dir={tmp / 'ck'}", *TINY, *STREAMABLE]), progress=False)
    return tmp / "ck" / "faceformer_synthetic" / "best.pt"


def test_a_streamable_actor_streams_live_at_its_own_lookahead(streamable, speech):
    "No length, no statistics but the audio's level: at 162.5 ms the live stream is the offline actor."
    ck = load_checkpoint(streamable)
    assert ck["config"]["model"]["audio"]["mel_lookahead"] == 6
    x = load_wav(speech).astype(np.float64)
    off, s, st, model = offline_and_stream(streamable, speech, lookahead_ms=162.5, audio_stats=(x.mean(), np.sqrt(x.var() + 1e-7)))
    assert encoder_lookahead_ms(model) == 162.5 and st.total is None
    np.testing.assert_allclose(s, off, atol=1e-5 * np.abs(off).max())


def test_stream_refuses_a_fifo_as_its_jsonl(actor, speech, tmp_path):  # noqa: F811
    "Opening a named pipe for writing would hang the command: it is refused by name."
    import os
    os.mkfifo(tmp_path / "frames.jsonl")
    one_line_error(cli("stream", speech, "--ckpt", actor, "--out", tmp_path / "frames.jsonl"), "frames.jsonl",
                   "not a regular file")


@pytest.fixture(scope="module")
def w2v_actor(tmp_path_factory, tiny_corpus):
    "A tiny wav2vec2 actor trained through `speechface train` (the tiny random wav2vec2: no download)."
    from test_animate_hostile import TINY
    from speechface.train.settings import load_config
    from speechface.train.supervised import train
    tmp = tmp_path_factory.mktemp("w2v")
    (tmp / "tiny").symlink_to(tiny_corpus)
    train(load_config([f"dataset.root={tmp / 'tiny'}", f"out_dir={tmp / 'ck'}", *TINY, "model.audio.backend=wav2vec2",
                       "model.audio.tiny=true"]), progress=False)
    return tmp / "ck" / "faceformer_synthetic" / "best.pt"


def test_a_wav2vec2_actor_streams_with_chunked_attention(w2v_actor, speech):
    "Whole stream: the offline actor; bounded lookahead: every frame, early, with the audio kept bounded by the window."
    off, s, st, model = offline_and_stream(w2v_actor, speech, lookahead_ms=None)
    assert model.audio_encoder.cfg.backend == "wav2vec2" and s.shape == off.shape
    np.testing.assert_allclose(s, off, atol=1e-5 * np.abs(off).max())
    off, s, st, _ = offline_and_stream(w2v_actor, speech, lookahead_ms=160, context_s=0.5)
    assert s.shape == off.shape and np.isfinite(s).all()
    assert len(st.buf) < 16000 * (0.5 + 0.16 + 0.04 + 0.1)                     # context, lookahead, a chunk, tokens spare
    assert np.abs(s - off).max() > 0                                           # it did hear less than offline


def test_stream_cli_wav2vec2_and_microphone_errors(w2v_actor, speech, tmp_path):
    r = cli("stream", speech, "--ckpt", w2v_actor, "--lookahead-ms", "whole", "--precision", "fp32", "--out", tmp_path / "w.npy",
            timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "audio encoder (wav2vec2): fp32 — asked for" in r.stdout, r.stdout[-2000:]
    r2 = animate(w2v_actor, speech, tmp_path / "offline.npy", "--precision", "fp32")
    assert r2.returncode == 0, r2.stderr[-2000:]
    m = np.load(tmp_path / "w.npy")
    np.testing.assert_allclose(m, np.load(tmp_path / "offline.npy"), atol=1e-5 * np.abs(m).max())
    r = cli("stream", speech, "--ckpt", w2v_actor, "--lookahead-ms", "160", "--context-s", "1", "--out", tmp_path / "b.npy", timeout=120)
    assert r.returncode == 0 and np.load(tmp_path / "b.npy").shape == m.shape, r.stderr[-2000:]
    from speechface.models.audio_encoder import cpu_has_bf16
    auto = "bf16" if cpu_has_bf16() else "fp32"                  # --precision auto (the default) says what it chose, and why
    assert f"audio encoder (wav2vec2): {auto} — " in r.stdout, r.stdout[-2000:]
    r = cli("stream", speech, "--ckpt", w2v_actor, "--lookahead-ms", "160", "--context-s", "1", "--precision", "fp32",
            "--out", tmp_path / "b32.npy", timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    b, b32 = np.load(tmp_path / "b.npy"), np.load(tmp_path / "b32.npy")
    if auto == "bf16": assert 0 < np.abs(b - b32).max() < 0.1 * np.abs(b32).max()   # the chunked encoder really ran in bf16
    else: np.testing.assert_array_equal(b, b32)
    one_line_error(cli("stream", "--ckpt", w2v_actor), "an audio file or --mic")
    one_line_error(cli("stream", speech, "--ckpt", w2v_actor, "--seconds", "3"), "--seconds limits a --mic stream")
    r = cli("stream", "--mic", "--seconds", "0.2", "--ckpt", w2v_actor, "--out", tmp_path / "mic.npy")
    if r.returncode != 0:                                  # no sounddevice / PortAudio / input device here: one line says which
        one_line_error(r, "microphone" if "cannot open" in r.stderr else "--mic needs the sounddevice package")
    else: assert np.load(tmp_path / "mic.npy").shape[1] == m.shape[1]   # a machine with a microphone: 0.2 s of frames
