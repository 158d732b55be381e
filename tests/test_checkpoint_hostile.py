"""Hostile checkpoints and configs (issue 26): a file may not make `speechface` allocate a huge model, reach the network,
write outside out_dir or die with a traceback. Each case edits a real tiny checkpoint and runs the command as a user
does, in a subprocess with a capped address space and a timeout; the contract is exit 2 and one line naming the file."""
import os, resource, subprocess, sys
from pathlib import Path

import pytest
import torch

TINY = ["model.feature_dim=32", "model.audio.mel_dim=32", "trainer.lr=1e-3", "trainer.batch_size=4", "trainer.max_train_items=4"]
AS_LIMIT = 6 * 2**30          # a refused 100-GiB model must be refused before allocating, well inside this
TIMEOUT_S = 120


def _limit():
    resource.setrlimit(resource.RLIMIT_AS, (AS_LIMIT, AS_LIMIT))


def sf(*args, env=None) -> subprocess.CompletedProcess:
    "`speechface ARGS` with an address-space limit, a timeout, offline."
    return subprocess.run([sys.executable, "-m", "speechface.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=TIMEOUT_S, preexec_fn=_limit,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", **(env or {})})


class Ran:
    "What `cli` returns: the shape of a CompletedProcess."
    def __init__(self, returncode, stdout, stderr): self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


def cli(capsys, *args) -> Ran:
    "`speechface ARGS` in this process (fast: no torch import per call), through the same `main` and its one-line errors."
    from speechface.cli import main
    capsys.readouterr()
    rc = main([str(a) for a in args])
    out = capsys.readouterr()
    return Ran(rc, out.out, out.err)


def one_line_error(r, *words):
    "Exit 2, stderr one line `speechface CMD: error: ...` containing every word; no traceback."
    err = r.stderr.strip()
    assert r.returncode == 2, (r.returncode, r.stdout[-1500:], r.stderr[-3000:])
    assert "Traceback" not in r.stderr and len(err.splitlines()) == 1, r.stderr[-3000:]
    for w in words: assert w in err, (w, err)
    return err


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_corpus):
    tmp = tmp_path_factory.mktemp("ck")
    (tmp / "tiny").symlink_to(tiny_corpus)
    ov = [f"dataset.root={tmp / 'tiny'}", f"out_dir={tmp / 'out'}", *TINY]
    r = subprocess.run([sys.executable, "-m", "speechface.cli", "train", *ov, "trainer.epochs=1", "--quiet"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    best = tmp / "out" / "faceformer_synthetic" / "best.pt"
    assert best.is_file()
    return tmp, ov, best


def edited(trained, name: str, fn) -> Path:
    "A copy of the tiny best.pt changed by `fn(ck) -> object to save`."
    tmp, _, best = trained
    ck = torch.load(best, weights_only=True)
    out = tmp / name
    torch.save(fn(ck), out)
    return out


def mc(**kw):
    return lambda ck: {**ck, "model_config": {**ck["model_config"], **kw}}


def animate(trained, ckpt, tmp_path, capsys=None):
    "animate with `ckpt`: in a limited subprocess, or in this process when given `capsys`."
    tmp, _, _ = trained
    wav = sorted((tmp / "tiny" / "wav").glob("*.wav"))[0]
    args = ("animate", wav, "--ckpt", ckpt, "--out", tmp_path / "o.npy", "--device", "cpu", "--quiet")
    return cli(capsys, *args) if capsys is not None else sf(*args)


def test_the_tiny_checkpoint_animates(trained, tmp_path):
    "The baseline every case below edits: it loads and animates under the same limits."
    r = animate(trained, trained[2], tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert (tmp_path / "o.npy").is_file()


@pytest.mark.parametrize("name, edit, words", [
    ("wide_deep", mc(feature_dim=2**16, n_layers=4096, ff_mult=64), ["model_config.feature_dim=65536 is outside"]),
    ("huge_motion", mc(motion_dim=3 * 10**9), ["model_config.motion_dim=3000000000 is outside"]),
    ("over_budget", mc(motion_dim=3 * 10**6, feature_dim=4096), ["the actor its config describes would need", "memory budget"]),
    ("huge_mel", lambda ck: {**ck, "model_config": {**ck["model_config"], "audio": {**ck["model_config"]["audio"], "mel_dim": 2**30}}},
     ["model_config.audio.mel_dim=1073741824 is outside"]),
])
def test_absurd_sizes_refused_before_allocating(trained, tmp_path, name, edit, words):
    ck = edited(trained, f"{name}.pt", edit)
    err = one_line_error(animate(trained, ck, tmp_path), *words)
    assert ck.name in err or "the checkpoint:" in err     # the file's name once animate passes load_actor(..., source=ckpt)


@pytest.mark.parametrize("name, edit, words", [
    ("unknown_field", mc(wings=2), ["unknown field(s) 'wings'"]),
    ("str_layers", mc(n_layers="2"), ["model_config.n_layers='2' (str) must be int"]),
    ("float_dim", mc(feature_dim=32.5), ["model_config.feature_dim=32.5 (float) must be int"]),
    ("list_config", lambda ck: {**ck, "model_config": [1, 2]}, ["model_config is a list"]),
    ("str_audio", mc(audio="mel"), ["model_config.audio is a str"]),
    ("no_model_config", lambda ck: {k: v for k, v in ck.items() if k != "model_config"},
     ["lacks 'model_config'", "was it written by `speechface train`?"]),
    ("no_model", lambda ck: {k: v for k, v in ck.items() if k != "model"}, ["lacks 'model'"]),
    ("no_config", lambda ck: {k: v for k, v in ck.items() if k != "config"}, ["lacks 'config'"]),
    ("not_a_dict", lambda ck: [1, 2, 3], ["not a checkpoint dict"]),
    ("subjects_mismatch", mc(n_subjects=7), ["do not fit the model its config describes", "obj_vector.weight"]),
    ("layers_mismatch", mc(n_layers=3), ["missing transformer_decoder.layers.1"]),
    ("model_not_dict", lambda ck: {**ck, "model": torch.zeros(3)}, ["not a state dict"]),
    ("bad_start_token", lambda ck: {**ck, "config": {**ck["config"], "model": {**ck["config"]["model"], "start_token": "x"}}},
     ["start_token='x': choose consistent or reference"]),
])
def test_damaged_checkpoint_is_one_line(trained, tmp_path, capsys, name, edit, words):
    ck = edited(trained, f"{name}.pt", edit)
    err = one_line_error(animate(trained, ck, tmp_path, capsys), *words)
    assert ck.name in err or "the checkpoint" in err


def test_test_command_reads_checkpoint_safely(trained, capsys):
    tmp, ov, _ = trained
    ck = edited(trained, "t_no_mc.pt", lambda c: {k: v for k, v in c.items() if k != "model_config"})
    one_line_error(cli(capsys, "test", *ov, "--ckpt", ck, "--quiet"), "lacks 'model_config'")
    ck = edited(trained, "t_huge.pt", mc(feature_dim=4096, motion_dim=3 * 10**6))
    one_line_error(sf("test", *ov, "--ckpt", ck, "--quiet"), "memory budget")


def test_allow_download_from_a_file_is_dropped(trained, monkeypatch):
    "A checkpoint cannot switch downloading on: load_pretrained is called with allow_download=False."
    from speechface.models import audio_encoder
    from speechface.models.actor import load_actor
    from speechface.core import UserError
    seen = []
    def fake(model_cls, name, allow_download=False, what=""):
        seen.append((name, allow_download))
        raise audio_encoder.AudioEncoderUnavailable("not cached (test)")
    monkeypatch.setattr(audio_encoder, "load_pretrained", fake)
    ck = torch.load(trained[2], weights_only=True)
    ck["model_config"]["audio"].update(backend="wav2vec2", name_or_path="facebook/wav2vec2-base-960h", allow_download=True)
    with pytest.raises(UserError): load_actor(ck)
    assert seen == [("facebook/wav2vec2-base-960h", False)]
    # the mel actor itself: the flag is dropped, the model loads
    ck = torch.load(trained[2], weights_only=True)
    ck["model_config"]["audio"]["allow_download"] = True
    assert load_actor(ck).cfg.audio.allow_download is False


def test_allow_download_cli_no_traceback(trained, tmp_path):
    ck = edited(trained, "dl.pt", lambda c: {**c, "model_config": {**c["model_config"], "audio": {
        **c["model_config"]["audio"], "backend": "wav2vec2", "name_or_path": "facebook/wav2vec2-base-960h", "allow_download": True}}})
    err = one_line_error(animate(trained, ck, tmp_path))                  # offline: refused without a connection attempt
    assert "was not downloaded" in err or "do not fit" in err, err     # not cached | cached, but the file's weights are mel


@pytest.mark.parametrize("run_name", ["../../x", "../sentinel/run1", "ABSOLUTE", "a/b"])
def test_train_run_must_be_one_folder(trained, tmp_path, capsys, run_name):
    tmp, _, _ = trained
    if run_name == "ABSOLUTE": run_name = str(tmp_path / "abs_run")      # an absolute run folder, inside this test's folder
    (tmp_path / "data").symlink_to(tmp / "tiny")
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    r = cli(capsys, "train", f"dataset.root={tmp_path / 'data'}", f"out_dir={tmp_path / 'a' / 'b' / 'out'}", *TINY,
           f"run={run_name}", "trainer.epochs=1", "--quiet")
    one_line_error(r, "must be one folder name inside out_dir")
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before        # nothing written anywhere (abs_run included)


def test_evaluate_unknown_split_and_condition(trained, capsys):
    tmp, ov, _ = trained
    sf = lambda *a: cli(capsys, *a)
    r = sf("test", *ov, "--quiet")
    assert r.returncode == 0, r.stderr[-2000:]
    res = tmp / "out" / "faceformer_synthetic" / "styledependant" / "results"
    one_line_error(sf("evaluate", res, "--data", tmp / "tiny", "--split", "nope"), "unknown split 'nope'", "test, train, val")
    one_line_error(sf("evaluate", res, "--data", tmp / "tiny", "--conditions", "nope"), "unknown condition(s) 'nope'", "synth_f1")
    one_line_error(sf("evaluate", res, "--data", tmp / "tiny", "--lip-reader", trained[2]), "lacks 'scale', 'idx'")
    one_line_error(sf("evaluate", res, "--data", tmp / "tiny", "--eval-expert", trained[2]), "lacks 'kind'")
    one_line_error(sf("evaluate", res, "--data", tmp / "tiny", "--eval-expert", tmp / "missing.pth"), "--eval-expert", "not found")
    bad = res / sorted(p.name for p in res.glob("*.npy"))[0]
    saved = bad.read_bytes()
    try:
        bad.write_text("hello")
        one_line_error(sf("evaluate", res, "--data", tmp / "tiny"), bad.name, "not a readable .npy")
        bad.unlink()
        os.mkfifo(bad)                                      # skipped (never opened): reported missing
        r = sf("evaluate", res, "--data", tmp / "tiny")
        assert r.returncode == 0, r.stderr[-2000:]
        assert "missing 1" in r.stdout
    finally:
        bad.unlink(missing_ok=True)
        bad.write_bytes(saved)
