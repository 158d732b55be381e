"""Training on several processes (torchrun, gloo on CPU) gives what one process gives with the same global batch,
and a checkpoint written by two processes resumes on one.

Tolerances: the toy task (no BatchNorm) agrees to 1e-6 (float32 sums in another order). FaceFormer's mel encoder
has a BatchNorm that normalises with each process's share of the batch, so there losses agree to 1e-4 (relative),
validation LVE to 1e-3 and every weight tensor to 2 % of its own scale after two epochs."""
import json, os, subprocess, sys, textwrap
from pathlib import Path

import pytest
import torch

from speechface.core import load_checkpoint

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}


def torchrun(n: int, *args, cwd=None):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(n), *map(str, args)]
    r = subprocess.run(cmd, capture_output=True, text=True, env=ENV, cwd=cwd, timeout=300)
    assert r.returncode == 0, f"{' '.join(cmd)}\n{r.stdout[-3000:]}\n{r.stderr[-5000:]}"
    return r


def test_toy_two_processes_equal_one(tmp_path):
    script = tmp_path / "toy.py"
    script.write_text(textwrap.dedent("""
        import sys, torch
        from speechface.train.loop import fit, LoopConfig, ToyRegression
        torch.set_num_threads(1)
        r = fit(ToyRegression(n=11), LoopConfig(epochs=int(sys.argv[2]), batch_size=4, grad_clip=0.5, seed=1, device="cpu"),
                sys.argv[1], progress=False)
        assert r["processes"] == int(sys.argv[3]), r["processes"]
    """))
    torchrun(1, script, tmp_path / "one", 3, 1)
    torchrun(2, script, tmp_path / "two", 3, 2)                # 11 items: the last batch of 3 splits 2 + 1
    torchrun(2, script, tmp_path / "resumed", 2, 2)            # two epochs on two processes ...
    torchrun(1, script, tmp_path / "resumed", 3, 1)            # ... the third on one
    w = {k: load_checkpoint(tmp_path / k / "last.pt")["model"]["weight"] for k in ("one", "two", "resumed")}
    assert torch.allclose(w["one"], w["two"], atol=1e-6), (w["one"], w["two"])
    assert torch.allclose(w["one"], w["resumed"], atol=1e-6)
    assert load_checkpoint(tmp_path / "resumed" / "last.pt")["processes"] == 1


TINY = ["model.feature_dim=32", "model.audio.mel_dim=32", "model.dropout=0.0", "trainer.lr=1e-3", "trainer.batch_size=4",
        "trainer.mode=teacher", "trainer.max_train_items=8", "trainer.val_every=1", "threads=1"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_corpus):
    tmp = tmp_path_factory.mktemp("dist")
    base = [f"dataset.root={tiny_corpus}", *TINY]
    cli = ["-m", "speechface.cli", "train", "--quiet"]
    torchrun(1, *cli, *base, f"out_dir={tmp / 'one'}", "trainer.epochs=2")
    torchrun(2, *cli, *base, f"out_dir={tmp / 'two'}", "trainer.epochs=2")
    torchrun(2, *cli, *base, f"out_dir={tmp / 'resumed'}", "trainer.epochs=1")
    torchrun(1, *cli, *base, f"out_dir={tmp / 'resumed'}", "trainer.epochs=2")
    return {k: load_checkpoint(tmp / k / "faceformer_synthetic" / "last.pt") for k in ("one", "two", "resumed")}


def _worst(a: dict, b: dict) -> tuple:
    "The tensor whose largest difference is largest relative to its own scale: (ratio, name)."
    return max((float((a[k] - b[k]).abs().max() / (a[k].abs().max() + 1e-4)), k) for k in a if a[k].is_floating_point())


def test_supervised_two_processes_equal_one(runs):
    one, two = runs["one"], runs["two"]
    assert two["processes"] == 2
    for r1, r2 in zip(one["history"], two["history"]):
        assert abs(r1["train_loss"] - r2["train_loss"]) <= 1e-4 * abs(r1["train_loss"]), (r1, r2)
        assert abs(r1["val_lve"] - r2["val_lve"]) <= 1e-3 * abs(r1["val_lve"]), (r1, r2)
    # the mel encoder's BatchNorm normalises with each process's half of the batch: close, not bit-equal
    assert _worst(one["model"], two["model"])[0] < 0.02, _worst(one["model"], two["model"])


def test_supervised_resume_from_two_processes_on_one(runs):
    one, res = runs["one"], runs["resumed"]
    assert res["processes"] == 1 and res["epoch"] == 2
    assert abs(one["history"][-1]["train_loss"] - res["history"][-1]["train_loss"]) <= 1e-4 * one["history"][-1]["train_loss"]
    assert _worst(one["model"], res["model"])[0] < 0.02, _worst(one["model"], res["model"])
