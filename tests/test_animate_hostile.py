"""`speechface animate` and `speechface synth --out` on hostile input, run as a user runs them (the real CLI in a
subprocess, with a timeout): lying audio headers, too-short audio, a named pipe where a file should be, outputs in
the way, faces that are not faces, a dataset where synth would write. Each must end in one line on stderr, exit 1 or
2, no traceback, in seconds — and a rerun of `animate --out seq.obj` on shorter audio must leave no stale frame.

The CLI runs as `python -m speechface.cli`, so `PYTHONPATH=<an older checkout>` runs the same tests on older code."""
import io, os, pickle, struct, subprocess

import numpy as np
import pytest
import soundfile as sf
import torch
from forkrun import run_cli

TIMEOUT_S = 60     # a normal animate here takes ~5 s; a hang or a 33-minute decode is caught by this
TINY = ["model.feature_dim=32", "model.audio.mel_dim=32", "trainer.lr=1e-3", "trainer.batch_size=4", "trainer.epochs=1"]


def cli(*args, timeout=TIMEOUT_S):
    "Run `speechface ARGS` in a fresh process (`forkrun`); a run past `timeout` fails the test (it would hang a user)."
    try:
        return run_cli(*args, timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"speechface {' '.join(map(str, args))} ran past {timeout} s")


def one_line_error(r, *needles):
    "Exit 1 or 2, exactly one line on stderr, no traceback, every needle in it."
    assert r.returncode in (1, 2), (r.returncode, r.stdout[-2000:], r.stderr[-3000:])
    assert "Traceback" not in r.stderr + r.stdout, r.stderr[-3000:]
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr[-3000:]
    for n in needles: assert n in lines[0], (n, lines[0])
    return lines[0]


@pytest.fixture(scope="module")
def actor(tmp_path_factory, tiny_corpus):
    "A speechface checkpoint of the tiny corpus (1 epoch, tiny model: what matters is that it loads and animates)."
    from speechface.train.settings import load_config
    from speechface.train.supervised import train
    tmp = tmp_path_factory.mktemp("actor")
    (tmp / "tiny").symlink_to(tiny_corpus)
    train(load_config([f"dataset.root={tmp / 'tiny'}", f"out_dir={tmp / 'ck'}", *TINY]), progress=False)
    return tmp / "ck" / "faceformer_synthetic" / "best.pt"


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    "A released-FaceFormer-shaped vocaset.pth with the tiny wav2vec2 (for --like-reference), its config and templates."
    from reference_replica import ReferenceReplica, legacy_weight_norm_keys
    from speechface.data.dataset import VOCASET
    from speechface.models.audio_encoder import tiny_wav2vec2_config
    tmp = tmp_path_factory.mktemp("released")
    torch.manual_seed(0)
    ref = ReferenceReplica("vocaset", 3 * 300, 32, len(VOCASET.train_subjects), tiny_wav2vec2_config()).eval()
    torch.save(legacy_weight_norm_keys(ref.state_dict()), tmp / "vocaset.pth")
    tiny_wav2vec2_config().to_json_file(tmp / "w2v.json")
    (tmp / "templates.pkl").write_bytes(pickle.dumps({"FaceTalk_170809_00138_TA": np.zeros((300, 3), np.float32)}, protocol=2))
    return ["--ckpt", tmp / "vocaset.pth", "--wav2vec2-config", tmp / "w2v.json", "--templates", tmp / "templates.pkl",
            "--template", "FaceTalk_170809_00138_TA"]


def wav(path, seconds=1.0, sr=16000):
    t = np.arange(int(round(seconds * sr))) / sr
    sf.write(path, (0.1 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), sr, subtype="PCM_16")
    return path


def raw_wav(path, rate, data):
    "A PCM mono 16-bit WAV whose header says `rate` Hz."
    fmt = struct.pack("<HHIIHH", 1, 1, rate, 2 * rate, 2, 16)
    path.write_bytes(b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt
                     + b"data" + struct.pack("<I", len(data)) + data)
    return path


def flac_huge_frames(path):
    "A valid 0.1 s FLAC whose STREAMINFO announces 2**36 - 1 frames (four days at 16 kHz)."
    buf = io.BytesIO()
    sf.write(buf, np.zeros(1600, np.float32), 16000, format="FLAC", subtype="PCM_16")
    b = bytearray(buf.getvalue())
    assert b[:4] == b"fLaC"
    b[18:26] = (int.from_bytes(b[18:26], "big") | (2**36 - 1)).to_bytes(8, "big")
    b[26:42] = bytes(16)
    path.write_bytes(bytes(b))
    return path


def fifo(path):
    os.mkfifo(path)
    return path


def animate(ckpt, audio, out, *extra):
    return cli("animate", audio, "--ckpt", ckpt, "--out", out, "--device", "cpu", "--quiet", *extra)


# ---------------------------------------------------------------------------------------------------- audio
@pytest.mark.parametrize("make,needles", [
    (lambda d: raw_wav(d / "one_hz.wav", 1, bytes(4000)), ["one_hz.wav", "sample rate of 1 Hz", "1000..384000 Hz"]),
    (lambda d: flac_huge_frames(d / "huge.flac"), ["huge.flac", "68719476735 frames", "--max-audio-seconds"]),
    (lambda d: wav(d / "ten_ms.wav", 0.010), ["ten_ms.wav", "10.0 ms", "25 ms minimum"]),
    (lambda d: fifo(d / "pipe.wav"), ["pipe.wav", "FIFO"]),
    (lambda d: (d / "text.wav").write_text("<html>404</html>") and d / "text.wav", ["text.wav", "not a readable audio file"]),
], ids=["1hz", "flac_2_36_frames", "10ms", "fifo", "text"])
def test_hostile_audio_is_one_line(actor, tmp_path, make, needles):
    one_line_error(animate(actor, make(tmp_path), tmp_path / "out" / "o.npy"), *needles)
    assert not (tmp_path / "out" / "o.npy").exists()


def test_audio_longer_than_the_cap_names_the_flag(actor, tmp_path):
    a = wav(tmp_path / "two_s.wav", 2.0)
    one_line_error(animate(actor, a, tmp_path / "o.npy", "--max-audio-seconds", "1"), "two_s.wav", "more than the limit of 1 s",
                   "--max-audio-seconds")
    assert animate(actor, a, tmp_path / "o.npy", "--max-audio-seconds", "3").returncode == 0
    assert np.load(tmp_path / "o.npy").shape[0] == 60


@pytest.mark.parametrize("make,needles", [
    (lambda d: (d / "garbage.wav").write_bytes(np.random.default_rng(0).bytes(3000)) and d / "garbage.wav",
     ["garbage.wav", "not a readable audio file"]),
    (lambda d: raw_wav(d / "one_hz.wav", 1, bytes(4000)), ["one_hz.wav", "sample rate of 1 Hz"]),
    (lambda d: wav(d / "thirty_ms.wav", 0.030), ["thirty_ms.wav", "ms minimum"]),
    (lambda d: fifo(d / "pipe.wav"), ["pipe.wav", "FIFO"]),
], ids=["garbage", "1hz", "30ms", "fifo"])
def test_like_reference_hostile_audio_is_one_line(released, tmp_path, make, needles):
    r = cli("animate", make(tmp_path), *released, "--out", tmp_path / "o.npy", "--like-reference", "--device", "cpu", "--quiet")
    one_line_error(r, *needles)


# ---------------------------------------------------------------------------------------------------- checkpoint fields
@pytest.mark.parametrize("edit,needles", [
    (lambda c: {"templates": {k: torch.zeros(7) for k in c["templates"]}}, ["'templates'", "expected 900 finite numbers"]),
    (lambda c: {"train_subjects": c["train_subjects"][:3]}, ["'train_subjects' lists 3 names"]),
    (lambda c: {"faces": torch.zeros(4, 2, dtype=torch.long)}, ["'faces'", "(F, 3)"]),
], ids=["templates_wrong_shape", "subjects_short", "faces_wrong_shape"])
def test_damaged_checkpoint_fields(actor, tmp_path, edit, needles):
    "What animate reads besides the weights (subjects, templates, faces) is checked and named."
    ck = torch.load(actor, weights_only=True)
    torch.save({**ck, **edit(ck)}, tmp_path / "damaged.pt")
    one_line_error(animate(tmp_path / "damaged.pt", wav(tmp_path / "a.wav"), tmp_path / "seq.obj"), "damaged.pt", *needles)


# ---------------------------------------------------------------------------------------------------- outputs
def test_out_obj_over_a_file(actor, tmp_path):
    (tmp_path / "x").write_text("mine")
    one_line_error(animate(actor, wav(tmp_path / "a.wav"), tmp_path / "x.obj"), "x.obj", "is a file")
    assert (tmp_path / "x").read_text() == "mine"


def test_out_obj_into_a_folder_of_other_files(actor, tmp_path):
    (tmp_path / "seq").mkdir()
    (tmp_path / "seq" / "notes.txt").write_text("mine")
    one_line_error(animate(actor, wav(tmp_path / "a.wav"), tmp_path / "seq.obj"), "notes.txt")
    assert sorted(p.name for p in (tmp_path / "seq").iterdir()) == ["notes.txt"]


@pytest.mark.parametrize("make,needles", [
    (lambda d: (d / "faces.obj").write_text("hello, not a mesh\n") and d / "faces.obj", ["faces.obj"]),
    (lambda d: (d / "faces.npy").write_text("1 2 3\n") and d / "faces.npy", ["faces.npy", "not a readable .npy"]),
    (lambda d: np.save(d / "flat.npy", np.zeros((7, 2), np.int64)) or d / "flat.npy", ["flat.npy", "(F, 3)"]),
    (lambda d: np.save(d / "far.npy", np.array([[0, 1, 10**6]])) or d / "far.npy", ["far.npy", "1000000"]),
    (lambda d: fifo(d / "pipe.npy"), ["pipe.npy", "FIFO"]),
], ids=["text_obj", "text_npy", "wrong_shape", "out_of_range", "fifo"])
def test_faces_of_the_wrong_kind(actor, tmp_path, make, needles):
    one_line_error(animate(actor, wav(tmp_path / "a.wav"), tmp_path / "seq.obj", "--faces", make(tmp_path)), *needles)
    assert not (tmp_path / "seq").exists()


def test_rerun_replaces_the_frames(actor, tmp_path):
    "A second run on shorter audio leaves exactly its own frames: none of the longer first run's."
    out = tmp_path / "seq.obj"
    assert animate(actor, wav(tmp_path / "long.wav", 1.0), out).returncode == 0
    first = sorted(p.name for p in (tmp_path / "seq").iterdir())
    assert len(first) == 30
    r = animate(actor, wav(tmp_path / "short.wav", 0.5), out)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (tmp_path / "seq").iterdir()) == [f"frame_{t:05d}.obj" for t in range(15)]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".seq")]      # no temporary folder left behind


# ---------------------------------------------------------------------------------------------------- synth --out
@pytest.mark.parametrize("preset", ["tiny", "dyadic-tiny", "beat2-tiny"])
def test_synth_refuses_a_folder_it_did_not_make(tmp_path, preset):
    data = tmp_path / "dataset"
    data.mkdir()
    (data / "templates.pkl").write_bytes(b"sentinel: their templates")
    (data / "wav").mkdir()
    (data / "wav" / "keep.wav").write_bytes(b"sentinel")
    one_line_error(cli("synth", "--preset", preset, "--out", data, "--quiet"), "dataset", "--force")
    assert (data / "templates.pkl").read_bytes() == b"sentinel: their templates"
    assert sorted(p.relative_to(data).as_posix() for p in data.rglob("*")) == ["templates.pkl", "wav", "wav/keep.wav"]


def test_synth_reruns_into_its_own_folder_and_force_keeps_foreign_files(tmp_path):
    out = tmp_path / "c"
    assert cli("synth", "--preset", "tiny", "--out", out, "--quiet", timeout=120).returncode == 0
    (out / "wav" / "stale.wav").write_bytes(b"")                  # inside an entry synth made: replaced with it
    r = cli("synth", "--preset", "tiny", "--out", out, "--quiet", timeout=120)
    assert r.returncode == 0, r.stderr
    assert not (out / "wav" / "stale.wav").exists() and (out / "templates.pkl").is_file()
    (out / "notes.txt").write_text("mine")                         # a file synth did not make: refused, then --force
    one_line_error(cli("synth", "--preset", "tiny", "--out", out, "--quiet"), "notes.txt", "--force")
    assert cli("synth", "--preset", "tiny", "--out", out, "--quiet", "--force", timeout=120).returncode == 0
    assert (out / "notes.txt").read_text() == "mine"


def test_synth_out_is_a_file(tmp_path):
    (tmp_path / "f").write_text("mine")
    one_line_error(cli("synth", "--preset", "tiny", "--out", tmp_path / "f", "--quiet"), "is a file")
    assert (tmp_path / "f").read_text() == "mine"
