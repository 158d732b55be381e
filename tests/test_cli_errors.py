"""The `speechface` console script on user errors (one line on stderr, exit 2, no traceback) versus --debug,
SPEECHFACE_DEBUG=1 and genuine bugs (tracebacks). The full table of bad inputs is in nbs/52_cli.ipynb."""
import os, subprocess, sys
import pytest
from speechface import cli


def run(*args, env=None):
    return subprocess.run(["speechface", *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, **(env or {})})


@pytest.mark.parametrize("args,needle", [
    (["train", "trainer.lr=abc"], "trainer.lr: Value 'abc' of type 'str' could not be converted to Float"),
    (["train", "trainer.lr=-1"], "trainer.lr=-1.0 (float) must be a number > 0"),
    (["train", "trainer.lrr=1"], "unknown config key 'trainer.lrr'"),
    (["train", "dataset.root=/nonexistent"], "dataset.root='/nonexistent': folder does not exist"),
])
def test_user_error_is_one_line(args, needle):
    r = run(*args)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and r.stderr.startswith(f"speechface {args[0]}: error: ") and needle in r.stderr


def test_evil_checkpoint_one_line_and_not_run(tmp_path):
    import torch
    class Evil:
        def __reduce__(self): return (os.system, (f"touch {tmp_path / 'ran'}",))
    torch.save({"model": Evil()}, tmp_path / "evil.pt")
    import numpy as np, soundfile as sf
    sf.write(tmp_path / "a.wav", np.zeros(16000), 16000)
    r = run("animate", tmp_path / "a.wav", "--ckpt", tmp_path / "evil.pt", "--out", tmp_path / "o.npy")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "evil.pt: refused by the weights-only loader" in r.stderr
    assert not (tmp_path / "ran").exists()


@pytest.mark.parametrize("how", ["flag", "env"])
def test_debug_shows_the_traceback(how):
    r = run("train", "trainer.lr=abc", *(["--debug"] if how == "flag" else []), env={"SPEECHFACE_DEBUG": "1"} if how == "env" else None)
    assert r.returncode != 0 and "Traceback" in r.stderr and "ConfigError: trainer.lr: Value 'abc'" in r.stderr


def test_bugs_keep_their_traceback(monkeypatch):
    "An exception that is not the user's (here a ZeroDivisionError inside a handler) is not swallowed."
    monkeypatch.setattr(cli, "_synth", lambda a: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        cli.main(["synth", "--out", "/tmp/never"])


def test_show_config_lists_every_key():
    r = run("train", "trainer=rl", "--show-config")
    assert r.returncode == 0 and "variant: seed" in r.stdout and "kl_weight:" in r.stdout and "root:" in r.stdout


def test_cli_module_imports_without_torch():
    "The synth workers re-run the console script; a torch import in speechface.cli made `synth --preset tiny` 24x slower."
    r = subprocess.run([sys.executable, "-c",
                        "import sys, speechface.cli; print(sorted(m for m in ('torch', 'numpy', 'hydra') if m in sys.modules))"],
                       capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stdout + r.stderr
