"""FSQ and the face tokenizer: bad inputs, precision, checkpoints and exact resume of tokenizer training."""
import math

import numpy as np
import pytest
import torch

from speechface.models.fsq import FSQ, RECOMMENDED_LEVELS, codebook_usage
from speechface.models.face_tokenizer import FaceTokenizer, FaceTokenizerConfig
from speechface.train.settings import TokenizerSettings
from speechface.train.tokenizer import random_walk_faces, train_tokenizer, load_tokenizer, collate_frames


def test_fsq_rejects_bad_levels_and_inputs():
    with pytest.raises(ValueError, match="needs offset/half_l < 1"): FSQ([2, 5], shift="atanh")
    FSQ([2, 5])                                                          # the paper's tan accepts L = 2
    q = FSQ([8, 5, 5, 5])
    with pytest.raises(ValueError, match="quantizes 4 dimensions"): q.quantize(torch.zeros(3, 5))
    with pytest.raises(TypeError, match="must be integers"): q.indices_to_codes(torch.tensor([1.0]))
    with pytest.raises(ValueError, match=r"\[0, 1000\)"): q.indices_to_codes(torch.tensor([-1]))
    with pytest.raises(ValueError, match="shift must be"): FSQ([5], shift="sin")


def test_fsq_l2_levels_round_trip():
    q = FSQ([2, 3, 2])
    cb = q.implicit_codebook
    assert torch.equal(q.codes_to_indices(cb), torch.arange(12))
    z = torch.randn(5000, 3) * 4
    assert set(q.codes_to_indices(q.quantize(z)).tolist()) == set(range(12))


def test_fsq_quantizes_in_float32_under_autocast():
    q = FSQ(RECOMMENDED_LEVELS[2**12])
    z = torch.randn(4096, 5) * 2
    with torch.autocast("cpu", dtype=torch.bfloat16):
        zb = q.quantize(z)
    assert zb.dtype == torch.float32 and torch.equal(zb, q.quantize(z))


def test_codebook_usage_counts():
    u = codebook_usage(np.array([3, 3, 3, 3]), 10)
    assert u.used == pytest.approx(0.1) and u.perplexity == pytest.approx(1.0) and u.n_tokens == 4
    assert math.isnan(codebook_usage(np.zeros(0, int), 10).perplexity)


def test_tokenizer_config_errors():
    with pytest.raises(ValueError, match="multiple of n_heads"): FaceTokenizerConfig(width=30, n_heads=4)
    with pytest.raises(ValueError, match="at least one output head"): FaceTokenizerConfig(heads={})
    tok = FaceTokenizer(FaceTokenizerConfig(width=16, n_heads=2, layers=1, block=4))
    with pytest.raises(ValueError, match=r"expected \(B, T\) token indices"): tok.decode(torch.zeros(5, dtype=torch.long))


def test_tokenizer_block_longer_than_sequence_and_empty_rows():
    torch.manual_seed(0)
    tok = FaceTokenizer(FaceTokenizerConfig(width=16, n_heads=2, layers=1, block=32)).eval()
    x = torch.randn(2, 5, 58)
    m = torch.ones(2, 5, dtype=torch.bool)
    m[1] = False     # a row with no real frame
    with torch.no_grad(): rec, idx = tok(x, m)
    assert torch.isfinite(rec["3dmm"]).all() and (idx[1] == 0).all() and (rec["emotion"][1] == 0).all()


def test_training_resumes_exactly_and_checkpoint_loads(tmp_path):
    torch.set_num_threads(1)
    train, val = random_walk_faces(6, 40, seed=0), random_walk_faces(2, 40, seed=1)
    mcfg = FaceTokenizerConfig(width=16, n_heads=2, layers=1, block=8)
    straight, s1 = train_tokenizer(train, val, mcfg, tmp_path / "a", TokenizerSettings(epochs=4, val_every=1, batch_size=3, crop=24))
    train_tokenizer(train, val, mcfg, tmp_path / "b", TokenizerSettings(epochs=2, val_every=1, batch_size=3, crop=24))
    resumed, s2 = train_tokenizer(train, val, mcfg, tmp_path / "b", TokenizerSettings(epochs=4, val_every=1, batch_size=3, crop=24))
    assert [r["val_l1"] for r in s1["history"]] == pytest.approx([r["val_l1"] for r in s2["history"]], abs=1e-6)
    b = collate_frames(val)
    with torch.no_grad():
        assert torch.equal(straight.encode(b["x"], b["mask"]), resumed.encode(b["x"], b["mask"]))
        again = load_tokenizer(tmp_path / "a" / "best.pt")
        assert torch.equal(again.encode(b["x"], b["mask"]), straight.encode(b["x"], b["mask"]))
    with pytest.raises(ValueError, match="not a face-tokenizer checkpoint"): load_tokenizer({"kind": "lip_reader"})
