"""The reward and RL on BEAT2 face coefficients: the vertex path of the sync expert is unchanged, and bad input to
the coefficient sync expert, the BEAT2 reward trainers, the perturbations, the ranking and `CoefficientRLTask` fails with
a message that says what was expected and the fix."""
from pathlib import Path

import numpy as np
import pytest
import torch

from speechface.core import UsageError, save_checkpoint, load_checkpoint
from speechface.models.reward import SyncExpertConfig, SyncExpert, sync_expert_state, load_sync_expert
from speechface.train.reward import (open_coefficient_closures, perturb, load_beat2_sync_data, train_sync_expert, train_reward_head)
from speechface.train.settings import SyncExpertSettings, RewardHeadSettings

SMALL = dict(d_model=16, n_heads=2, n_layers=1, conv_channels=4, embed_dim=8)


def test_vertex_path_unchanged():
    "Fixed seed, fixed input: the vertex sync expert gives the embeddings it gave before `motion` existed (recorded at 5cdfd4f)."
    want = {"template": [-0.45531824, 0.25580007, -0.39183584, -0.10414661],
            "first_frame": [-0.33849505, 0.66326034, 0.36708519, -0.01105279]}
    for ref, first in want.items():
        torch.manual_seed(0)
        bb = SyncExpert(SyncExpertConfig(motion_dim=120, mesh_reference=ref, **SMALL), vertex_idx=torch.arange(0, 40, 2)).eval()
        g = torch.Generator().manual_seed(1)
        mesh, mel, tpl = torch.randn(3, 5, 120, generator=g), torch.randn(3, 1, 20, 128, generator=g), torch.randn(3, 120, generator=g)
        with torch.no_grad(): vf, af = bb(mesh, mel, tpl)
        np.testing.assert_allclose(vf[0, :4].numpy(), first, atol=1e-5)
        np.testing.assert_allclose(af[0, :4].numpy(), [-0.22464581, 0.62895280, -0.27814901, 0.39208117], atol=1e-5)
        assert "vertex_idx" in bb.state_dict()


def test_coefficient_sync_expert_bad_input(tmp_path):
    bb = SyncExpert(SyncExpertConfig(motion_dim=106, motion="coefficients", **SMALL)).eval()
    mel = torch.randn(2, 1, 20, 128)
    with pytest.raises(ValueError, match=r"mesh_clip must be \(B, 5, 106\) 106-d coefficient vectors"):
        bb(torch.randn(2, 5, 103), mel, torch.zeros(2, 103))
    with pytest.raises(ValueError, match=r"mesh_clip must be \(B, 5, 106\)"):
        bb(torch.randn(2, 4, 106), mel, torch.zeros(2, 106))                      # a 4-frame clip
    with pytest.raises(ValueError, match=r"template must be \(B, 106\) reference vectors"):
        bb(torch.randn(2, 5, 106), mel, torch.zeros(2, 318))
    with pytest.raises(ValueError, match=r"pass template=\(B, D\)"):
        bb(torch.randn(2, 5, 106), mel)
    with pytest.raises(ValueError, match="reads whole"):
        SyncExpert(SyncExpertConfig(motion_dim=106, motion="coefficients", **SMALL), vertex_idx=torch.arange(4))
    with pytest.raises(ValueError, match="reads whole"):
        SyncExpert(SyncExpertConfig(motion_dim=106, motion="coefficients", n_selected=4, **SMALL))
    with pytest.raises(ValueError, match="motion must be one of"):
        SyncExpert(SyncExpertConfig(motion="flame", **SMALL))
    with pytest.raises(ValueError, match=r"motion_dim must be 3V"):               # the vertex path still checks xyz
        SyncExpert(SyncExpertConfig(motion_dim=106, **SMALL))
    save_checkpoint(tmp_path / "c.pth", sync_expert_state(bb))                      # a checkpoint without vertex_idx reloads
    bb2 = load_sync_expert(tmp_path / "c.pth")
    x, r = torch.randn(2, 5, 106), torch.randn(2, 106)
    with torch.no_grad(): torch.testing.assert_close(bb2(x, mel, r)[0], bb(x, mel, r)[0])
    assert bb2.cfg.motion == "coefficients"


def test_coefficient_perturbations_bad_input():
    x = torch.randn(30, 106)
    with pytest.raises(ValueError, match=r"opening must be \(30,\)"):
        open_coefficient_closures(x, torch.rand(29))
    torch.testing.assert_close(open_coefficient_closures(x, torch.ones(30)), x)   # never closed: nothing to open
    opening = torch.ones(30)
    opening[10:14] = 0
    out = open_coefficient_closures(x, opening, strength=0.5)
    assert not torch.allclose(out[10:14], x[10:14]) and torch.allclose(out[:5], x[:5])
    with pytest.raises(ValueError, match="jaw opening for face coefficients"):
        perturb(x, torch.zeros(106), "open_closures")
    with pytest.raises(ValueError, match="unknown perturbation"):
        perturb(x, torch.zeros(106), "mirror")


@pytest.fixture(scope="module")
def beat2_root():
    from speechface.data.beat2_synth import cached_beat2_corpus
    torch.set_num_threads(1)
    return cached_beat2_corpus("tiny")


def test_beat2_sync_data(beat2_root):
    seqs = load_beat2_sync_data(beat2_root, ("val",))
    q = seqs[0]
    assert q["motion"].shape[1] == 106 and q["template"].shape == (106,) and len(q["mel"]) == len(q["motion"]) - 4
    assert q["motion_kind"] == "coefficients" and q["opening"].shape == (len(q["motion"]),)
    g = load_beat2_sync_data(beat2_root, ("val",), part="gesture")[0]
    assert g["motion"].shape[1] == 258 and "opening" not in g                     # no jaw in the gesture vector
    with pytest.raises(UsageError, match="part 'lips' is not one of"):
        load_beat2_sync_data(beat2_root, ("val",), part="lips")
    with pytest.raises(Exception, match="train_test_split.csv"):
        load_beat2_sync_data(Path(beat2_root).parent / "no_such_corpus")


def test_reward_trainers_on_coefficients_bad_input(beat2_root, tmp_path):
    with pytest.raises(ValueError, match=r"set SyncExpertSettings\(region=None\)"):
        train_sync_expert(beat2_root, SyncExpertSettings(epochs=1, out=str(tmp_path / "bb.pth")), load=load_beat2_sync_data, progress=False)
    train_sync_expert(beat2_root, SyncExpertSettings(epochs=1, model=SMALL, region=None, out=str(tmp_path / "bb.pth")),
                      load=load_beat2_sync_data, progress=False)
    assert load_sync_expert(tmp_path / "bb.pth").cfg.motion == "coefficients"
    with pytest.raises(ValueError, match="actor negatives are read from FaceFormer-layout corpora"):
        train_reward_head(beat2_root, RewardHeadSettings(epochs=1, sync_expert=str(tmp_path / "bb.pth"), out=str(tmp_path / "h.pt"),
                                                         actor=str(tmp_path / "bb.pth")), load=load_beat2_sync_data, progress=False)


def test_ranking_and_rl_bad_input(beat2_root, tmp_path):
    from speechface.models.reward import RewardHead, RewardHeadConfig
    from speechface.train.coefficient_rl import reward_ranking, train_coefficient_rl
    from speechface.train.coefficients import train_coefficients
    from speechface.train.settings import load_config
    bb = SyncExpert(SyncExpertConfig(motion_dim=106, motion="coefficients", **SMALL)).eval()
    head = RewardHead(RewardHeadConfig(embed_dim=8)).eval()
    with pytest.raises(UsageError, match="needs at least one sequence"):
        reward_ranking(bb, head, [])
    q = load_beat2_sync_data(beat2_root, ("val",))[0]
    short = {**q, "motion": q["motion"][:10], "mel": q["mel"][:6], "opening": q["opening"][:10]}
    with pytest.raises(UsageError, match="too short for a 8-frame audio shift"):
        reward_ranking(bb, head, [short])
    tab = reward_ranking(bb, head, [q], perturbations=("jitter",))
    assert list(tab.index) == ["ground truth", "audio shifted 8 frames", "static (reference)", "jitter"]
    save_checkpoint(tmp_path / "bb.pth", sync_expert_state(bb))
    from speechface.models.reward import head_state
    save_checkpoint(tmp_path / "h.pt", head_state(head))
    base = ["dataset=beat2", f"dataset.root={beat2_root}", "dataset.part=face", "dataset.window=45", "dataset.stride=15",
            f"out_dir={tmp_path}", "model.feature_dim=16", "model.stochastic=true", "device=cpu"]
    train_coefficients(load_config(["trainer=coefficients", *base, "run=sft", "trainer.epochs=1"]), progress=False)
    ck = load_checkpoint(tmp_path / "sft" / "best.pt")
    rl = ["trainer=rl", *base, f"trainer.sync_expert={tmp_path / 'bb.pth'}", f"trainer.head={tmp_path / 'h.pt'}", "trainer.epochs=1"]
    with pytest.raises(UsageError, match="dataset.part='gesture' but the actor was trained on 'face'"):
        train_coefficient_rl(load_config([*rl, f"trainer.init_actor={tmp_path / 'sft' / 'best.pt'}", "run=a",
                                          "dataset.part=gesture"]), progress=False)
    save_checkpoint(tmp_path / "mesh_like.pt", {k: v for k, v in ck.items() if k != "coefficients"})
    with pytest.raises(UsageError, match="was not written by trainer=coefficients"):
        train_coefficient_rl(load_config([*rl, f"trainer.init_actor={tmp_path / 'mesh_like.pt'}", "run=b"]), progress=False)
    with pytest.raises(FileNotFoundError, match="the SFT actor"):
        train_coefficient_rl(load_config([*rl, f"trainer.init_actor={tmp_path / 'none.pt'}", "run=c"]), progress=False)
