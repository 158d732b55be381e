"Reward model: shapes, batched scoring, frozen sync expert for RL, weights-only checkpoints, sync negatives."
import numpy as np
import pytest
import torch

from speechface.core import save_checkpoint, load_checkpoint
from speechface.models.reward import (SyncExpertConfig, SyncExpert, RewardHead, RewardHeadConfig, score_sequence,
                                      freeze, sync_expert_state, head_state, load_sync_expert, load_reward_head, clip_windows,
                                      SyncExpertScorer)
from speechface.data.audio import mel_frames
from speechface.train.settings import SyncExpertSettings
from speechface.train.reward import sample_shifts, epoch_anchors, candidate_mask, train_sync_expert, load_sync_data
from speechface.metrics.mesh import lip_sync_offset

torch.set_num_threads(1)
V = 40

def small(**kw):
    torch.manual_seed(0)
    cfg = SyncExpertConfig(motion_dim=3 * V, d_model=32, n_heads=2, n_layers=1, conv_channels=4, **kw)
    return SyncExpert(cfg, vertex_idx=torch.arange(0, V, 2)).eval(), RewardHead(RewardHeadConfig(hidden=32)).eval()

def batch(B=3, T=14):
    g = torch.Generator().manual_seed(1)
    verts = torch.randn(B, T, 3 * V, generator=g) * 0.01
    mel = torch.randn(B, T - 4, 1, 20, 128, generator=g)
    mask = torch.ones(B, T, dtype=torch.bool)
    mask[1, 10:] = False
    mask[2, 7:] = False
    return verts, mel, mask, torch.randn(B, 3 * V, generator=g) * 0.01

def test_shapes_and_bad_input():
    bb, head = small()
    vf, af = bb(torch.randn(4, 5, 3 * V), torch.randn(4, 1, 20, 128), torch.randn(4, 3 * V))
    assert vf.shape == af.shape == (4, 512)
    assert torch.allclose(vf.norm(dim=-1), torch.ones(4), atol=1e-5)
    out = head(vf, af)
    assert all(out[k].shape == (4,) for k in ("lip_score", "real_score", "value"))
    with pytest.raises(ValueError, match="mel_clip must be"):
        bb(torch.randn(4, 5, 3 * V), torch.randn(4, 1, 16, 128), torch.randn(4, 3 * V))
    with pytest.raises(ValueError, match="vertex_idx must hold indices"):
        SyncExpert(SyncExpertConfig(motion_dim=3 * V), vertex_idx=torch.tensor([0, V]))
    fb = SyncExpert(SyncExpertConfig(motion_dim=3 * V, d_model=32, n_layers=1, mesh_reference="first_frame"))
    assert fb(torch.randn(2, 5, 3 * V), torch.randn(2, 1, 20, 128))[0].shape == (2, 512)  # no template needed

@pytest.mark.parametrize("stride", [1, 2])
def test_batched_scoring_equals_per_clip_loop(stride):
    bb, head = small()
    verts, _, mask, tpl = batch()
    B, T = mask.shape
    Tc = (T - 5) // stride + 1
    mel = torch.randn(B, Tc, 1, 20, 128)
    res = score_sequence(bb, head, verts, mel, mask, tpl, stride=stride)
    chunked = score_sequence(bb, head, verts, mel, mask, tpl, stride=stride, max_clips=3)
    n_valid = 0
    with torch.no_grad():
        for b in range(B):
            vals = []
            for i in range(Tc):
                s = i * stride
                if not mask[b, s:s + 5].all():
                    assert not res["clip_mask"][b, i] and res["lip_score"][b, i] == 0
                    continue
                o = head(*bb(verts[b:b + 1, s:s + 5], mel[b:b + 1, i], tpl[b:b + 1]))
                for k in ("lip_score", "real_score", "value"):
                    assert abs(float(res[k][b, i] - o[k][0])) <= 1e-5
                    assert abs(float(chunked[k][b, i] - o[k][0])) <= 1e-5
                vals.append(float(o["lip_score"][0]))
                n_valid += 1
            assert abs(float(res["lip_score_seq"][b]) - np.mean(vals)) <= 1e-5
    assert n_valid == int(res["clip_mask"].sum()) and n_valid < B * Tc   # padding really excluded

def test_clip_windows_is_unfold_of_frames():
    x = torch.arange(2 * 9 * 2.).reshape(2, 9, 2)
    w = clip_windows(x, 5, 2)
    assert w.shape == (2, 3, 5, 2) and torch.equal(w[1, 2], x[1, 4:9])

def test_frozen_sync_expert_trainable_value_head():
    bb, head = small()
    freeze(bb)
    head.train()
    assert not any(p.requires_grad for p in bb.parameters()) and not bb.training
    verts, mel, mask, tpl = batch()
    verts.requires_grad_(True)                                   # the actor's sample
    out = score_sequence(bb, head, verts, mel, mask, tpl)
    reward = (out["lip_score_seq"] + out["real_score_seq"]).detach()
    critic_loss = ((reward - out["value_seq"]) ** 2).mean()
    critic_loss.backward()
    assert all(p.grad is None for p in bb.parameters())
    g = head.value[-1].weight.grad
    assert g is not None and g.abs().sum() > 0                   # the critic learns
    assert verts.grad is not None                                # differentiable reward w.r.t. the motion (direct backprop option)

def test_weights_only_checkpoint_round_trip(tmp_path):
    bb, head = small()
    save_checkpoint(tmp_path / "sync_expert.pt", sync_expert_state(bb, epoch=3, history=[{"loss": 1.0}]))
    save_checkpoint(tmp_path / "reward_head.pt", head_state(head))
    raw = torch.load(tmp_path / "sync_expert.pt", weights_only=True)   # plain data only
    assert raw["epoch"] == 3 and raw["config"]["d_model"] == 32
    bb2, head2 = load_sync_expert(tmp_path / "sync_expert.pt"), load_reward_head(tmp_path / "reward_head.pt")
    x = (torch.randn(2, 5, 3 * V), torch.randn(2, 1, 20, 128), torch.randn(2, 3 * V))
    with torch.no_grad():
        for a, b in zip(bb(*x), bb2(*x)): assert torch.equal(a, b)
        assert torch.equal(head(*bb(*x))["lip_score"], head2(*bb(*x))["lip_score"])
    assert torch.equal(bb2.vertex_idx, torch.arange(0, V, 2))
    with pytest.raises(ValueError, match="not a head_v2"): load_reward_head(tmp_path / "sync_expert.pt")

def test_shifted_negatives_respect_min_shift():
    rng = np.random.default_rng(0)
    pos = rng.integers(0, 40, 500)
    o = sample_shifts(pos, np.full(500, 40), 6, 3, 15, rng)
    assert (np.abs(o) >= 3).all() and (np.abs(o) <= 15).all()
    assert ((pos[:, None] + o >= 0) & (pos[:, None] + o < 40)).all()
    assert (o > 0).any() and (o < 0).any()
    with pytest.raises(ValueError, match="no shift"): sample_shifts(np.array([0]), np.array([3]), 1, 3, 15)
    seqs = [{"mel": torch.zeros(n, 1, 20, 128)} for n in (20, 35, 12)]
    cfg = SyncExpertSettings(clips_per_seq=6, shifts_per_clip=4, min_shift=3)
    sid, pos, shift = epoch_anchors(seqs, [0, 1, 2], cfg, seed=0, epoch=1)
    N = len(sid)
    assert N == 18 and (np.abs(shift) >= 3).all() and (pos[:, None] + shift >= 0).all()
    assert (pos[:, None] + shift < np.array([len(seqs[s]["mel"]) for s in sid])[:, None]).all()
    cand = np.stack([np.r_[sid, np.repeat(sid, 4)], np.r_[pos, (pos[:, None] + shift).ravel()]], 1)
    near = candidate_mask(sid, pos, cand, np.arange(N), cfg.min_shift)
    assert not near[np.arange(N), np.arange(N)].any()                  # the aligned clip is always a candidate
    for i in range(N):                                    # every unmasked same-sequence negative is ≥ min_shift away
        j = np.flatnonzero(~near[i])
        j = j[j != i]
        same = cand[j, 0] == sid[i]
        assert (np.abs(cand[j, 1][same] - pos[i]) >= 3).all()
    s1, p1, sh1 = epoch_anchors(seqs, [1], cfg, seed=0, epoch=1)          # a sequence's draw does not depend on the others
    assert np.array_equal(p1, pos[sid == 1]) and np.array_equal(sh1, shift[sid == 1])
    assert not np.array_equal(epoch_anchors(seqs, [1], cfg, seed=0, epoch=2)[1], p1)   # ... but on the epoch

def test_mel_frames_and_scorer_plug_into_lip_sync_offset(tmp_path, tiny_corpus):
    (tmp_path / "tiny").symlink_to(tiny_corpus)
    res = train_sync_expert(tmp_path / "tiny", SyncExpertSettings(seed=0, epochs=12, out=str(tmp_path / "ck" / "sync_expert.pt"),
                            model={"d_model": 32, "n_layers": 1, "conv_channels": 4}), progress=False)
    ck = load_checkpoint(tmp_path / "ck" / "sync_expert.pt")        # weights-only loadable
    assert ck["seed"] == 0 and ck["kind"] == "speech_mesh_transformer"
    q = load_sync_data(tmp_path / "tiny", ("val",))[0]
    fr = mel_frames(q["mel"])
    assert fr.shape == (len(q["motion"]), 4, 128)
    assert np.array_equal(fr[3:8].reshape(20, 128), q["mel"][3, 0].numpy())   # clip i = frames i..i+4
    assert np.array_equal(fr[-5:].reshape(20, 128), q["mel"][-1, 0].numpy())
    r = lip_sync_offset(SyncExpertScorer(res["expert"], q["template"]), q["motion"], fr, max_offset=5)
    assert len(r.distances) == 11 and np.isfinite(r.distances).all()
    # the trained expert finds a planted shift, sign and size: mesh late by k frames (audio[t] meets mesh[t - k]) reads +k.
    # One 68-frame clip is noisy for a tiny expert, so the check is the median over the corpus' 18 clips.
    clips = [(SyncExpertScorer(res["expert"], c["template"]), np.asarray(c["motion"]), mel_frames(c["mel"]))
             for c in load_sync_data(tmp_path / "tiny", ("train", "val"))]
    late = lambda v, a, k: (v[:len(v) - k], a[k:]) if k >= 0 else (v[-k:], a[:len(a) + k])   # audio frame t meets mesh t - k
    for k in (-3, 0, 3):
        found = [lip_sync_offset(score, *late(v, a, k), max_offset=5).offset for score, v, a in clips]
        assert np.median(found) == k, f"mesh late by {k} frames: offsets {sorted(found)}, median {np.median(found)}"

def test_closure_negatives_from_the_command_line(tmp_path, tiny_corpus):
    "trainer.closure_negatives trains the closure term (its accuracy is logged) with the strengths given; bad strengths fail early."
    import pandas as pd
    from clirun import run
    (tmp_path / "tiny").symlink_to(tiny_corpus)
    common = [f"dataset.root={tmp_path / 'tiny'}", f"out_dir={tmp_path / 'ck'}", "trainer=sync_expert", "trainer.epochs=2",
              "+trainer.model.d_model=32", "+trainer.model.n_layers=1", "threads=1"]
    run("train", *common, "trainer.closure_negatives=1", "trainer.closure_open=[0.15,0.4]")
    ck = load_checkpoint(tmp_path / "ck" / "reward" / "sync_expert.pt")
    assert ck["train_config"]["closure_negatives"] == 1.0 and list(ck["train_config"]["closure_open"]) == [0.15, 0.4]
    m = pd.read_csv(tmp_path / "ck" / "reward" / "sync_expert_run" / "metrics.csv")
    assert m["train_closure_acc"].between(0, 1).all() and m["train_closure_acc"].iloc[-1] > 0.5
    r = run("train", *common, "trainer.closure_negatives=1", "trainer.closure_open=[0]", check=False)
    assert r.returncode != 0 and "closure_open" in (r.stdout + r.stderr) and "Traceback" not in r.stderr
