"""Audio domain randomisation (speechface.data.augment, trainer.augment.*): determinism, measured effects, off = untouched."""
import math, random
from dataclasses import asdict, replace

import librosa
import numpy as np
import pytest
import torch

from speechface.data import augment
from speechface.data.augment import (AugmentedDataset, augment_active, augment_audio, augment_item, band_filter, item_rng,
                                     resample_motion)
from speechface.train.settings import AugmentSettings, ConfigError, load_config
from clirun import run

SR = 16000
OFF = AugmentSettings()
ALL = replace(OFF, **{f"{n}_p": 1.0 for n in augment.TRANSFORMS}, reverb_rooms=2)
TINY = ["model.feature_dim=32", "model.audio.mel_dim=32", "trainer.lr=1e-3", "trainer.batch_size=4", "trainer.max_train_items=8"]


def only(name, **kw):
    "Settings with one transform always on."
    return replace(OFF, **{f"{name}_p": 1.0}, **kw)


@pytest.fixture(scope="module")
def tone():
    "A 150 Hz harmonic tone, 1.5 s at 16 kHz."
    t = np.arange(int(1.5 * SR)) / SR
    return (sum(np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, 40)) / 3).astype(np.float32)


@pytest.fixture(scope="module")
def noise():
    return np.random.default_rng(0).standard_normal(SR).astype(np.float32)


def pitch_hz(x):
    return float(np.nanmedian(librosa.pyin(x, fmin=60, fmax=500, sr=SR, frame_length=1024)[0]))


def test_draw_is_a_pure_function_of_seed_epoch_index(tone):
    a = augment_audio(tone, SR, ALL, item_rng(3, 2, 5))
    random.seed(7)
    np.random.seed(7)
    expect = (random.random(), np.random.rand())
    random.seed(7)
    np.random.seed(7)
    augment_audio(tone, SR, ALL, item_rng(1, 1, 1))                     # other draws in between ...
    assert (random.random(), np.random.rand()) == expect                 # ... leave the global generators where they were
    b = augment_audio(tone, SR, ALL, item_rng(3, 2, 5))
    assert a[0].tobytes() == b[0].tobytes() and a[1] == b[1] and a[2] == b[2]
    c = augment_audio(tone, SR, ALL, item_rng(3, 3, 5))                  # the next epoch draws anew
    assert a[1] != c[1]
    items = [{"audio": tone, "motion": np.zeros((45, 6), np.float32)} for _ in range(4)]
    d1, d2 = AugmentedDataset(items, asdict(ALL), seed=3), AugmentedDataset(items, asdict(ALL), seed=3)
    d1.set_epoch(2)
    d2.set_epoch(2)
    for i in (3, 0, 2): d1[i]                                            # another order of access
    assert d1[1]["audio"].tobytes() == d2[1]["audio"].tobytes()


def test_disabled_is_byte_identical(tone):
    assert not augment_active(OFF) and not augment_active(None)
    y, log, rate = augment_audio(tone, SR, OFF, item_rng(0, 0, 0))
    assert y.tobytes() == tone.tobytes() and log == {} and rate == 1.0


def test_noise_snr_within_1_db(noise):
    for i in range(5):
        y, log, _ = augment_audio(noise, SR, only("noise", noise_snr_min_db=0.0, noise_snr_max_db=40.0), item_rng(0, 0, i))
        snr = 10 * np.log10(np.mean(noise.astype(np.float64) ** 2) / np.mean((y.astype(np.float64) - noise) ** 2))
        assert abs(snr - log["noise"]["snr_db"]) < 1.0, (snr, log)


def test_pitch_shift_within_half_a_semitone(tone):
    f0 = pitch_hz(tone)
    for i in range(3):
        y, log, _ = augment_audio(tone, SR, only("pitch", pitch_semitones=4.0), item_rng(0, 0, i))
        asked = log["pitch"]["num_semitones"]
        assert abs(12 * np.log2(pitch_hz(y) / f0) - asked) < 0.5, asked


def test_formant_shift_keeps_the_pitch(tone):
    f0 = pitch_hz(tone)
    for alpha in (0.88, 1.12):
        y = augment.formant_shift(tone, SR, alpha)
        assert abs(12 * np.log2(pitch_hz(y) / f0)) < 0.2 and not np.allclose(y, tone, atol=1e-2)


def band_db(y, x, sel):
    return 10 * np.log10((np.abs(np.fft.rfft(y)) ** 2)[sel].sum() / (np.abs(np.fft.rfft(x)) ** 2)[sel].sum())


def test_band_limit_removes_energy_above_the_cutoff(noise):
    f = np.fft.rfftfreq(len(noise), 1 / SR)
    lows = 0
    for i in range(12):
        y, log, _ = augment_audio(noise, SR, only("band"), item_rng(0, 0, i))
        lp = log["band"]["lowpass_hz"]
        if lp is None: continue
        lows += 1
        if 1.25 * lp < 7900: assert band_db(y, noise, f > 1.25 * lp) < -30, log
    assert lows >= 3                                                     # low- and band-pass were drawn
    y = band_filter(noise, SR, None, 3000.0)
    assert band_db(y, noise, f > 3750) < -30 and abs(band_db(y, noise, f < 2400)) < 1


def test_reverb_adds_no_delay(noise):
    y, log, _ = augment_audio(noise, SR, only("reverb", reverb_rooms=2), item_rng(0, 0, 0))
    xc = np.correlate(y[:4000], noise[:4000], "full")
    assert np.argmax(np.abs(xc)) - 3999 == 0 and "room" in log["reverb"]


def test_time_stretch_keeps_audio_and_motion_in_step(tone):
    T, fps = 45, 30                                                      # 1.5 s of frames
    motion = np.cumsum(np.ones((T, 6), np.float32), 0)
    item = {"audio": tone, "motion": motion, "phones": np.arange(T) // 5, "template": np.zeros(6), "one_hot": np.eye(2)[0]}
    rates = set()
    for i in range(6):
        out = augment_item(item, only("stretch", stretch_rate=0.3), item_rng(0, 0, i))
        rate = out["augment"]["stretch"]["rate"]
        rates.add(round(rate, 3))
        assert abs(len(out["audio"]) / SR * fps - len(out["motion"])) <= 1, (rate, len(out["audio"]), len(out["motion"]))
        assert len(out["phones"]) == len(out["motion"]) and out["template"] is item["template"]
        assert len(out["audio"]) == round(len(tone) / rate)
    assert len(rates) == 6 and min(rates) < 1 < max(rates)
    r = resample_motion(motion, 60)
    assert r.shape == (60, 6) and np.allclose(r[[0, -1]], motion[[0, -1]])
    with pytest.raises(ValueError, match="new_T=0"): resample_motion(motion, 0)


def test_settings_are_checked():
    with pytest.raises(ConfigError, match="trainer.augment.pitch_p=2"): AugmentSettings(pitch_p=2)
    with pytest.raises(ConfigError, match="trainer.augment.noise_p=-1.0 .float. must be"):
        load_config(["trainer.augment.noise_p=-1"])


def _train(tmp, name, *extra):
    from speechface.train.supervised import train
    cfg = load_config([f"dataset.root={tmp / 'tiny'}", f"out_dir={tmp / 'ck'}", f"run={name}", "trainer.epochs=2", *TINY, *extra])
    r = train(cfg, progress=False)
    return r, torch.load(tmp / "ck" / name / "last.pt", weights_only=True)["model"]


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory, tiny_corpus):
    tmp = tmp_path_factory.mktemp("aug")
    (tmp / "tiny").symlink_to(tiny_corpus)
    return tmp


def test_training_with_noise_augments_training_items_only(corpus_dir, monkeypatch):
    calls = []
    real = augment.augment_audio
    monkeypatch.setattr(augment, "augment_audio", lambda *a, **k: calls.append(1) or real(*a, **k))
    r, noisy = _train(corpus_dir, "noise", "trainer.augment.noise_p=1.0")
    assert len(calls) == 8 * 2                                           # 8 training items × 2 epochs; validation read none
    assert all(math.isfinite(h["train_loss"]) and math.isfinite(h["val_lve"]) for h in r["history"])
    _, clean = _train(corpus_dir, "clean")
    assert any(not torch.equal(noisy[k], clean[k]) for k in clean)       # the noise reached the model


def test_off_is_bit_identical(corpus_dir):
    _, a = _train(corpus_dir, "off_default")
    _, b = _train(corpus_dir, "off_zeros", *[f"trainer.augment.{n}_p=0.0" for n in augment.TRANSFORMS])
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_cli_trains_with_augmentation(corpus_dir):
    ov = [f"dataset.root={corpus_dir / 'tiny'}", f"out_dir={corpus_dir / 'cli'}", *TINY]
    r = run("train", *ov, "trainer.epochs=1", "trainer.augment.noise_p=1.0", "trainer.augment.stretch_p=0.5", "--quiet")
    assert "best val LVE" in r.stdout
