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


ROOT = Path(__file__).resolve().parents[1]


def write_toy_task(folder: Path) -> None:
    "toy_task.py in `folder`: the lesson's `ToyRegression`, read from its notebook cell (the package does not ship it)."
    nb = json.loads((ROOT / "nbs" / "40a_train.loop.ipynb").read_text())
    cell = next("".join(c["source"]) for c in nb["cells"] if "class ToyRegression(Task)" in "".join(c["source"]))
    (folder / "toy_task.py").write_text("import torch\nfrom speechface.train.loop import Task\n\n" + cell + "\n")


def test_toy_two_processes_equal_one(tmp_path):
    write_toy_task(tmp_path)
    script = tmp_path / "toy.py"
    script.write_text(textwrap.dedent("""
        import sys, torch
        from speechface.train.loop import fit
        from speechface.train.settings import FitSettings
        from toy_task import ToyRegression
        torch.set_num_threads(1)
        r = fit(ToyRegression(n=11), FitSettings(epochs=int(sys.argv[2]), batch_size=4, grad_clip=0.5, seed=1, device="cpu"),
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


@pytest.fixture(scope="module")
def rl_runs(tmp_path_factory, tiny_corpus):
    "An SFT actor, a sync expert and a score head on the tiny corpus, then one RL epoch on 1 and on 2 processes."
    tmp = tmp_path_factory.mktemp("rl")
    # without the mel encoder's per-utterance normalisation, whose statistics include a batch's padding (and a batch
    # split across processes is padded differently): then the only difference left is the summation order
    base = [f"dataset.root={tiny_corpus}", f"out_dir={tmp / 'ck'}", "model.feature_dim=32", "model.audio.mel_dim=32", "threads=1",
            "model.audio.mel_utterance_norm=false"]
    prep = tmp / "prep.py"
    prep.write_text(textwrap.dedent(f"""
        import torch
        from speechface.train.supervised import train
        from speechface.train.settings import load_config
        from speechface.train.reward import train_sync_expert, train_reward_head
        torch.set_num_threads(1)
        train(load_config({base!r} + ["trainer.lr=1e-3", "trainer.batch_size=4", "trainer.epochs=1"]), progress=False)
        ck = {str(tmp / 'ck')!r}
        from speechface.train.settings import SyncExpertSettings, RewardHeadSettings
        expert = SyncExpertSettings(epochs=1, model=dict(d_model=32, n_layers=1), out=ck + "/reward/sync_expert.pt")
        train_sync_expert({str(tiny_corpus)!r}, expert, progress=False)
        head = RewardHeadSettings(epochs=1, sync_expert=ck + "/reward/sync_expert.pt", out=ck + "/reward/reward_head.pt")
        train_reward_head({str(tiny_corpus)!r}, head, progress=False)
        from speechface.core import load_checkpoint, save_checkpoint      # the head's dropout off: random masks differ per process
        h = load_checkpoint(ck + "/reward/reward_head.pt")
        h["config"]["dropout"] = 0.0
        save_checkpoint(ck + "/reward/reward_head.pt", h)
    """))
    r = subprocess.run([sys.executable, str(prep)], capture_output=True, text=True, env=ENV, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    rl = ["-m", "speechface.cli", "train", "--quiet", *base, "trainer=rl", "trainer.variant=backprop", "trainer.rollout=free",
          "trainer.kl_weight=0.1", "trainer.epochs=1", "trainer.lr=1e-4", "trainer.batch_size=4", "trainer.max_train_items=4"]
    torchrun(1, *rl, "run=rl1")
    torchrun(2, *rl, "run=rl2")
    return {**{k: load_checkpoint(tmp / "ck" / k / "last.pt") for k in ("rl1", "rl2")},
            "init": tmp / "ck" / "faceformer_synthetic" / "best.pt"}


def test_rl_two_processes_equal_one(rl_runs, tmp_path):
    """Reward back-propagation on free rollouts, 1 vs 2 processes, one optimiser step (4 utterances, global batch 4, so
    the logged loss is the one both computed before any update): every RL loss term is a local sum over a global count,
    so the losses agree to float precision; the weights agree in the update's direction (Adam's first steps are
    ~lr·sign(g), which turns float-level differences in near-zero gradients into full-size steps)."""
    one, two = rl_runs["rl1"], rl_runs["rl2"]
    assert two["processes"] == 2 and one["epoch"] == two["epoch"] == 1
    h1, h2 = one["history"][-1], two["history"][-1]
    print(f"RL 1 vs 2 processes: train loss {h1['train_loss']:.8f} / {h2['train_loss']:.8f}, reward {h1['reward']:.6f} / "
          f"{h2['reward']:.6f}, val LVE {h1['val_lve']:.6e} / {h2['val_lve']:.6e}")
    for k in ("actor", "critic", "reward", "lip", "real"):                 # each term to float precision
        assert abs(h1[k] - h2[k]) <= 1e-5 * abs(h1[k]), (k, h1[k], h2[k])
    # the loss is actor + critic ≈ -1.06 + 1.12: a difference of two O(1) terms, so its error is relative to them
    assert abs(h1["train_loss"] - h2["train_loss"]) <= 1e-5 * (abs(h1["actor"]) + abs(h1["critic"]))
    assert abs(h1["val_lve"] - h2["val_lve"]) <= 1e-4 * h1["val_lve"]
    init = load_checkpoint(rl_runs["init"])["model"]
    keys = [k for k in init if init[k].is_floating_point()]
    d1 = torch.cat([(one["model"][k] - init[k]).flatten() for k in keys])
    d2 = torch.cat([(two["model"][k] - init[k]).flatten() for k in keys])
    cos = float(torch.nn.functional.cosine_similarity(d1, d2, 0))
    print(f"update norms {float(d1.norm()):.4g} / {float(d2.norm()):.4g}, cosine {cos:.4f}")
    assert d1.norm() > 0 and cos > 0.99 and abs(float(d1.norm() / d2.norm()) - 1) < 0.05


@pytest.fixture(scope="module")
def reward_runs(tmp_path_factory, tiny_corpus):
    """The sync expert (InfoNCE with candidates gathered from every process) and the score head (balanced BCE over
    global class counts), two epochs each on 1 and on 2 processes; dropout off (its masks differ per process)."""
    tmp = tmp_path_factory.mktemp("reward")
    script = tmp / "reward.py"
    script.write_text(textwrap.dedent(f"""
        import sys, torch
        from speechface.train.reward import train_sync_expert, train_reward_head
        from speechface.train.settings import SyncExpertSettings, RewardHeadSettings
        from speechface.models.reward import RewardHeadConfig
        torch.set_num_threads(1)
        out, which = sys.argv[1], sys.argv[2]
        if which == "sync":        # 16 training sequences in batches of 5: the last batch (1 sequence) leaves a process idle
            train_sync_expert({str(tiny_corpus)!r}, SyncExpertSettings(epochs=2, seqs_per_batch=5, clips_per_seq=4, shifts_per_clip=2,
                              model=dict(d_model=32, n_layers=1, conv_channels=4, dropout=0.0), out=out + "/sync_expert.pt"),
                              progress=False, device="cpu")
        else:
            head = RewardHeadSettings(epochs=2, batch_size=300, sync_expert=sys.argv[3], out=out + "/reward_head.pt")
            train_reward_head({str(tiny_corpus)!r}, head,
                              head_cfg=RewardHeadConfig(embed_dim=512, dropout=0.0), progress=False, device="cpu")
    """))
    for n in (1, 2):
        torchrun(n, script, tmp / f"sync{n}", "sync")
    for n in (1, 2):
        torchrun(n, script, tmp / f"head{n}", "head", tmp / "sync1" / "sync_expert.pt")
    return {k: load_checkpoint(tmp / k / ("sync_expert_run" if k.startswith("sync") else "reward_head_run") / "last.pt")
            for k in ("sync1", "sync2", "head1", "head2")} | {"sync_expert": load_checkpoint(tmp / "sync2" / "sync_expert.pt")}


@pytest.mark.parametrize("kind", ["sync", "head"])
def test_reward_trainers_two_processes_equal_one(reward_runs, kind):
    one, two = reward_runs[f"{kind}1"], reward_runs[f"{kind}2"]
    assert one["processes"] == 1 and two["processes"] == 2 and one["epoch"] == two["epoch"] == 2
    for r1, r2 in zip(one["history"], two["history"]):
        print(f"{kind} epoch {r1['epoch']}: train loss {r1['train_loss']:.8f} (1 process) / {r2['train_loss']:.8f} (2)")
        assert abs(r1["train_loss"] - r2["train_loss"]) <= 1e-5 * abs(r1["train_loss"]), (r1, r2)
    # the weights, as one vector: Adam turns float-level noise in gradients that are zero in exact arithmetic (the key
    # bias of attention, which softmax ignores) into ±lr steps, so single tensors can differ by lr·steps; the whole
    # does not move
    keys = [k for k in one["model"] if one["model"][k].is_floating_point()]
    w1, w2 = (torch.cat([m[k].flatten().double() for k in keys]) for m in (one["model"], two["model"]))
    rel = float((w1 - w2).norm() / w1.norm())
    print(f"{kind}: |w1 - w2| / |w1| = {rel:.2e}; largest per-tensor difference {_worst(one['model'], two['model'])}")
    assert rel < 1e-3, rel
    if kind == "sync": assert reward_runs["sync_expert"]["kind"] == "speech_mesh_transformer"   # published for load_sync_expert
