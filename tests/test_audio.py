"""Bad-input and alignment tests for `speechface.data.audio` and `speechface.models.audio_encoder`."""
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest
import soundfile as sf
import torch

from speechface.data.audio import AudioFileError, load_wav, log_mel, mel_clips, normalize_audio, LOG_FLOOR
from speechface.models.audio_encoder import (AudioEncoderConfig, AudioEncoderUnavailable, align_to_frames,
                                             build_audio_encoder, tokens_per_frame)


# ---------------------------------------------------------------------------------------------------------------
# load_wav: one test per bad input; each error must name the file

def _good_wav(path, n=1600, sr=16000):
    sf.write(path, 0.1 * np.sin(np.arange(n) / 5.0).astype(np.float32), sr, subtype="PCM_16")
    return path


def _expect_error(path, contains):
    with pytest.raises(AudioFileError) as ei:
        load_wav(path)
    msg = str(ei.value)
    assert path.name in msg, msg
    assert contains in msg, msg
    assert "Expected" in msg
    return msg


def test_missing_file(tmp_path):
    _expect_error(tmp_path / "nope.wav", "not found")


def test_empty_file(tmp_path):
    (tmp_path / "empty.wav").write_bytes(b"")
    _expect_error(tmp_path / "empty.wav", "empty (0 bytes)")


def test_truncated_header(tmp_path):
    data = _good_wav(tmp_path / "good.wav").read_bytes()
    (tmp_path / "cut.wav").write_bytes(data[:30])
    _expect_error(tmp_path / "cut.wav", "not a readable audio file")


def test_truncated_data(tmp_path):
    data = _good_wav(tmp_path / "good.wav").read_bytes()
    (tmp_path / "half.wav").write_bytes(data[: len(data) // 2])
    _expect_error(tmp_path / "half.wav", "truncated")


def test_text_file_named_wav(tmp_path):
    (tmp_path / "readme.wav").write_text("<html>404 not found</html>\n")
    msg = _expect_error(tmp_path / "readme.wav", "not a readable audio file")
    assert "ffmpeg" in msg   # says what to do


def test_zero_length_audio(tmp_path):
    sf.write(tmp_path / "zero.wav", np.zeros((0, 2), np.float32), 16000)
    _expect_error(tmp_path / "zero.wav", "0 audio samples")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nonfinite_samples(tmp_path, bad):
    x = np.zeros((1000, 2), np.float32)
    x[700, 1] = bad
    sf.write(tmp_path / "bad.wav", x, 16000, subtype="FLOAT")
    msg = _expect_error(tmp_path / "bad.wav", "NaN/inf")
    assert "sample 700, channel 1" in msg


def test_directory_is_not_a_file(tmp_path):
    with pytest.raises(AudioFileError, match="directory"):
        load_wav(tmp_path)


def test_audio_file_error_is_value_error(tmp_path):
    with pytest.raises(ValueError):
        load_wav(tmp_path / "missing.wav")


# ---------------------------------------------------------------------------------------------------------------
# load_wav: formats, rates, channels

@pytest.mark.parametrize("subtype", ["PCM_16", "PCM_24", "FLOAT", "PCM_U8"])
@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
def test_formats_and_rates_load_to_mono_16k(tmp_path, subtype, rate):
    n = int(0.5 * rate) + 3
    t = np.arange(n) / rate
    left = 0.4 * np.sin(2 * np.pi * 300 * t)
    x = np.stack([left, 0.5 * left], 1).astype(np.float32)        # stereo, channels differ
    fn = tmp_path / f"s_{subtype}_{rate}.wav"
    sf.write(fn, x, rate, subtype=subtype)
    y = load_wav(fn)
    assert y.dtype == np.float32 and y.ndim == 1
    assert len(y) == round(n * 16000 / rate)
    # mono = mean of the channels: amplitude 0.75 · 0.4 = 0.3 (8-bit quantisation and resampler ripple allowed)
    assert abs(np.abs(y[len(y) // 4: -len(y) // 4]).max() - 0.3) < 0.02
    peak_hz = np.argmax(np.abs(np.fft.rfft(y))) * 16000 / len(y)
    assert abs(peak_hz - 300) <= 16000 / len(y)


def test_flac_and_ogg(tmp_path):
    x = (0.3 * np.sin(np.arange(44100) * 2 * np.pi * 200 / 44100)).astype(np.float32)
    for fmt, sub in (("FLAC", "PCM_16"), ("OGG", "VORBIS")):
        fn = tmp_path / f"a.{fmt.lower()}"
        sf.write(fn, x, 44100, format=fmt, subtype=sub)
        assert len(load_wav(fn)) == 16000


def test_sr_argument_validated(tmp_path):
    with pytest.raises(ValueError, match="positive integer"):
        load_wav(_good_wav(tmp_path / "g.wav"), sr=-1)


def test_normalize_audio_masked_batch():
    g = torch.Generator().manual_seed(0)
    x = torch.zeros(2, 100)
    x[0] = torch.randn(100, generator=g) * 3 + 1
    x[1, :40] = torch.randn(40, generator=g) * 0.1 - 2
    m = torch.arange(100)[None] < torch.tensor([[100], [40]])
    y = normalize_audio(x, m)
    assert torch.allclose(y[1, :40].mean(), torch.tensor(0.), atol=1e-4)   # float32, as wav2vec2's extractor
    assert torch.allclose(y[1, :40].std(unbiased=False), torch.tensor(1.), atol=1e-3)
    assert (y[1, 40:] == 0).all()
    np.testing.assert_allclose(normalize_audio(x.numpy(), m.numpy()), y.numpy(), atol=1e-5)


# ---------------------------------------------------------------------------------------------------------------
# mel clips for the reward model

@pytest.mark.parametrize("fps", [30, 25])
def test_mel_clips_shape_and_coverage(fps):
    n_frames = 2 * fps
    audio = np.random.default_rng(0).standard_normal(2 * 16000).astype(np.float32)
    mel = log_mel(audio, fps)
    assert mel.shape == (4 * n_frames + 1, 128)
    clips = mel_clips(audio, n_frames, fps)
    assert clips.shape == (n_frames - 4, 1, 20, 128)
    for i in range(len(clips)):
        np.testing.assert_array_equal(clips[i, 0], mel[4 * i: 4 * i + 20])
    strided = mel_clips(audio, n_frames, fps, stride=2)
    assert strided.shape == ((n_frames - 5) // 2 + 1, 1, 20, 128)
    np.testing.assert_array_equal(strided[3, 0], mel[24:44])


def test_mel_clips_batched_torch_matches_numpy():
    rng = np.random.default_rng(1)
    audio = rng.standard_normal((3, 16000)).astype(np.float32)
    b = mel_clips(torch.from_numpy(audio), 30, 30)
    assert isinstance(b, torch.Tensor) and b.shape == (3, 26, 1, 20, 128)
    for i in range(3):
        np.testing.assert_allclose(b[i].numpy(), mel_clips(audio[i], 30, 30), atol=1e-5)


def test_mel_clips_pads_short_audio_with_silence():
    audio = np.random.default_rng(2).standard_normal(16000 - 800).astype(np.float32)   # 50 ms short
    clips = mel_clips(audio, 30, 30)
    assert clips.shape == (26, 1, 20, 128)
    np.testing.assert_array_equal(clips[-1, 0, -1], np.full(128, np.log(LOG_FLOOR), np.float32))


def test_mel_clips_errors_name_lengths():
    audio = np.zeros(16000, np.float32)
    with pytest.raises(ValueError, match=r"n_frames=3 is shorter than one clip \(clip_len=5"):
        mel_clips(audio, 3, 30)
    with pytest.raises(ValueError, match="max_pad_s"):
        mel_clips(audio, 60, 30)                                    # 1 s of audio for 2 s of motion
    with pytest.raises(ValueError, match="divide 6000"):
        mel_clips(audio, 30, 29.97)


def test_mel_click_is_centred_on_its_mesh_frame():
    click = np.zeros(16000, np.float32)
    click[16000 * 7 // 25] = 1.0     # start of mesh frame 7 at 25 fps
    energy = np.exp(log_mel(click, 25)).sum(1)
    assert int(energy.argmax()) == 28


# ---------------------------------------------------------------------------------------------------------------
# frame-rate alignment

@pytest.mark.parametrize("dur", [1.0, 3.7, 60.0])
@pytest.mark.parametrize("fps", [30, 25])
def test_alignment_shapes(dur, fps):
    n_tok = int(dur * 50) - 1                                        # what wav2vec2's CNN gives
    n_frames = round(dur * fps)
    out = align_to_frames(torch.randn(1, n_tok, 16), n_frames, fps)
    k = tokens_per_frame(fps)
    assert k == (2 if fps == 25 else 1)
    assert out.shape == (1, n_frames * k, 16)


@pytest.mark.parametrize("dur", [1.0, 3.7])
@pytest.mark.parametrize("fps", [30, 25])
@pytest.mark.parametrize("backend", ["wav2vec2", "whisper", "mel"])
def test_encoder_output_shapes(backend, dur, fps):
    enc = build_audio_encoder(backend=backend, tiny=backend != "mel").eval()
    n_frames = round(dur * fps)
    with torch.inference_mode():
        out = enc(torch.randn(1, int(dur * 16000)), n_frames, fps)
    assert out.shape == (1, n_frames * tokens_per_frame(fps), enc.out_dim)


def test_wav2vec2_60s_alignment():
    enc = build_audio_encoder(backend="wav2vec2", tiny=True).eval()
    with torch.inference_mode():
        assert enc(torch.randn(1, 60 * 16000), 1800, 30).shape == (1, 1800, 64)
        assert enc(torch.randn(1, 60 * 16000), 1500, 25).shape == (1, 3000, 64)


def test_alignment_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="same utterance"):
        align_to_frames(torch.randn(1, 49, 4), 90, 30)


def test_wav2vec2_frozen_cnn():
    enc = build_audio_encoder(backend="wav2vec2", tiny=True)
    cnn = {id(p) for p in enc.model.feature_extractor.parameters()}
    assert cnn and all(not p.requires_grad for p in enc.model.feature_extractor.parameters())
    assert all(p.requires_grad for p in enc.parameters() if id(p) not in cnn)
    unfrozen = build_audio_encoder(backend="wav2vec2", tiny=True, freeze_feature_encoder=False)
    assert all(p.requires_grad for p in unfrozen.parameters())


# ---------------------------------------------------------------------------------------------------------------
# offline loading

@pytest.mark.parametrize("backend,hub_id", [("wav2vec2", "facebook/wav2vec2-base-960h"),
                                            ("whisper", "openai/whisper-tiny")])
def test_offline_hub_id_fails_fast_with_fix(monkeypatch, backend, hub_id):
    from huggingface_hub import try_to_load_from_cache
    if isinstance(try_to_load_from_cache(hub_id, "config.json"), str):
        pytest.skip(f"{hub_id} is in this machine's Hugging Face cache")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    build_audio_encoder(backend=backend, tiny=True)                  # warm the transformers import
    t0 = time.perf_counter()
    with pytest.raises(AudioEncoderUnavailable) as ei:
        build_audio_encoder(backend=backend)                         # default hub id, not cached
    assert time.perf_counter() - t0 < 1.0
    msg = str(ei.value)
    assert hub_id in msg and "not in the local Hugging Face cache" in msg
    assert "backend='mel'" in msg and "local directory" in msg and "allow_download=True" in msg


def test_missing_local_directory(tmp_path):
    with pytest.raises(AudioEncoderUnavailable, match="does not exist"):
        build_audio_encoder(backend="wav2vec2", name_or_path=str(tmp_path / "no_model_here"))


def test_local_directory_without_weights(tmp_path):
    with pytest.raises(AudioEncoderUnavailable, match="could not be loaded"):
        build_audio_encoder(backend="wav2vec2", name_or_path=str(tmp_path))


def test_local_whisper_directory_roundtrip(tmp_path):
    from transformers import WhisperModel
    from speechface.models.audio_encoder import tiny_whisper_config
    WhisperModel(tiny_whisper_config()).save_pretrained(tmp_path / "w")
    enc = build_audio_encoder(backend="whisper", name_or_path=str(tmp_path / "w")).eval()
    with torch.inference_mode():
        assert enc(torch.randn(1, 16000), 25, 25).shape == (1, 50, 64)


def test_unknown_backend():
    with pytest.raises(ValueError, match="choose one of"):
        AudioEncoderConfig(backend="hubert")


def test_encoder_input_errors():
    enc = build_audio_encoder()
    with pytest.raises(ValueError, match=r"audio\[None\]"):
        enc(torch.randn(16000), 30, 30)
    with pytest.raises(ValueError, match="at least 400"):
        enc(torch.randn(1, 100), 1, 30)
    with pytest.raises(ValueError, match="n_frames"):
        enc(torch.randn(1, 16000), 0, 30)


def test_mel_backend_deterministic_given_seed():
    a = torch.randn(1, 8000)
    e1, e2 = build_audio_encoder(seed=3).eval(), build_audio_encoder(seed=3).eval()
    with torch.inference_mode():
        assert torch.equal(e1(a, 15, 30), e2(a, 15, 30))
