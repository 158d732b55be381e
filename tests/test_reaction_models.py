"""Reaction models beyond the notebooks: they can learn (tiny overfits), and bad inputs fail with messages that say what to do."""
import pytest
import torch

from speechface.core import UserError
from speechface.models.reaction_vae import (FACE_DIM, ReactionShapeError, ReactionVAE, ReactionVAEConfig,
                                            reaction_vae_batch_losses, split_face)
from speechface.models.reaction_fsq import (ReactionTokenPredictor, ReactionTokenPredictorConfig, sample_top_k,
                                            token_batch_loss)
from speechface.models.reaction_online import OnlineReactionManager

torch.set_num_threads(1)

def tiny_vae(**kw):
    torch.manual_seed(0)
    return ReactionVAE(ReactionVAEConfig(**{"audio_dim": 8, "feature_dim": 32, "latent_dim": 4, "n_encoder_layers": 1,
                                            "n_decoder_layers": 1, "window": 4, "max_seq_len": 16, "dropout": 0.0, **kw}))

def tiny_tok(**kw):
    torch.manual_seed(0)
    return ReactionTokenPredictor(ReactionTokenPredictorConfig(**{"vocab_size": 8, "audio_dim": 8, "feature_dim": 32,
                                  "n_encoder_layers": 1, "n_decoder_layers": 1, "window": 4, "max_seq_len": 16,
                                  "dropout": 0.0, **kw}))

def test_vae_learns_listener_from_speaker():
    "The listener's landmarks are the speaker's (window 0 aside): reconstruction must fall well below its start."
    model = tiny_vae(w_diversity=0.0, w_smooth=0.0, w_contrastive=0.0, w_consistency=0.0, n_samples=1)
    g = torch.Generator().manual_seed(0)
    spk = torch.rand(4, 16, FACE_DIM, generator=g)
    batch = {"speaker_face": spk, "speaker_audio": torch.zeros(4, 16, 8), "listener_face": spk.clone()}
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = None
    for _ in range(150):
        losses = reaction_vae_batch_losses(model, batch, augment=False)
        opt.zero_grad()
        losses["loss"].backward()
        opt.step()
        first = first if first is not None else losses["rec_landmarks"].item()
    assert losses["rec_landmarks"].item() < 0.3 * first, (first, losses["rec_landmarks"].item())

def test_token_predictor_learns_one_window_ahead_copy():
    "Listener window w repeats speaker window w-1: visible one window ahead, so CE must drop far below log(V)."
    model = tiny_tok()
    with torch.no_grad():
        for m in model.modules():
            if hasattr(m, "gate"): m.gate.fill_(0.5)
    g = torch.Generator().manual_seed(0)
    spk = torch.randint(0, 8, (16, 16), generator=g)
    lis = torch.cat([torch.zeros(16, 4, dtype=torch.long), spk[:, :-4]], 1)
    batch = {"speaker_tokens": spk, "speaker_audio": torch.zeros(16, 16, 8), "listener_tokens": lis}
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(200):
        out = token_batch_loss(model, batch)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
    assert out["loss"].item() < 0.5 and out["accuracy"] > 0.85, out

def test_vae_bad_inputs():
    model = tiny_vae().eval()
    f, a = torch.rand(2, 10, FACE_DIM), torch.randn(2, 10, 8)
    with pytest.raises(ReactionShapeError, match="resample the audio"): model(f, a[:, :9])
    with pytest.raises(ReactionShapeError, match="136 landmarks"): split_face(torch.zeros(2, 10, 150))
    with pytest.raises(ReactionShapeError, match="listener_past must match"): model(f, a, f[:, :9])
    with pytest.raises(ReactionShapeError, match="eps must be"): model(f, a, eps=torch.zeros(2, 1, 2, 4))
    with pytest.raises(ReactionShapeError, match="padding at the end only"):
        model(f, a, mask=torch.tensor([[False] + [True] * 9] * 2))
    with pytest.raises(ReactionShapeError, match="batch lacks"): reaction_vae_batch_losses(model, {"speaker_face": f})
    assert issubclass(ReactionShapeError, UserError) and issubclass(ReactionShapeError, ValueError)

def test_vae_stream_order_errors():
    model = tiny_vae().eval()
    st = model.init_state(1)
    with pytest.raises(ReactionShapeError, match="push it first"): model.decode_window(st)
    model.encode_window(st, torch.rand(1, 3, FACE_DIM), torch.randn(1, 3, 8))         # a short, final window
    model.decode_window(st)
    with pytest.raises(ReactionShapeError, match="call reset"): model.encode_window(st, torch.rand(1, 4, FACE_DIM), torch.randn(1, 4, 8))
    with pytest.raises(ReactionShapeError, match="1..4 frames"):
        model.encode_window(model.init_state(1), torch.rand(1, 5, FACE_DIM), torch.randn(1, 5, 8))

def test_token_bad_inputs_and_sampling_args():
    model = tiny_tok().eval()
    s, a = torch.randint(0, 8, (2, 10)), torch.randn(2, 10, 8)
    with pytest.raises(ReactionShapeError, match="tokenizer's levels"): model(s, a, s + 8)
    with pytest.raises(ReactionShapeError, match="integer FSQ ids"): model(s.float(), a, s)
    with pytest.raises(ReactionShapeError, match="must match"): model(s, a, s[:, :9])
    with pytest.raises(ReactionShapeError, match="batch lacks"): token_batch_loss(model, {"speaker_tokens": s})
    with pytest.raises(ValueError, match="temperature"): sample_top_k(torch.randn(3, 8), 2, -1.0)
    with pytest.raises(ValueError, match="top_k"): sample_top_k(torch.randn(3, 8), -2)
    st = model.init_state(2)
    model.decode_window(st)
    with pytest.raises(ReactionShapeError, match="push it first"): model.decode_window(st)

def test_manager_errors_and_detokenizer():
    with pytest.raises(ReactionShapeError, match="model.eval"): OnlineReactionManager(tiny_vae())
    with pytest.raises(ReactionShapeError, match="no `init_state`"): OnlineReactionManager(torch.nn.Linear(2, 2).eval())
    tok = tiny_tok().eval()
    det = torch.nn.Embedding(8, 83)
    mgr = OnlineReactionManager(tok, seed=1, batch_size=2, detokenizer=det, top_k=3)
    s, a = torch.randint(0, 8, (2, 10)), torch.randn(2, 10, 8)
    off = mgr.generate_offline(s, a)
    assert off["tokens"].shape == (2, 10) and off["decoded"].shape == (2, 10, 83)
    assert torch.equal(off["decoded"], det(off["tokens"]))
    with pytest.raises(ReactionShapeError, match="batch=2"): mgr.push(s[:1, :4], a[:1, :4])

def test_vae_online_latents_per_window():
    "Per-window outputs come back one row per window; the manager's offline run keeps them."
    vae = tiny_vae().eval()
    out = OnlineReactionManager(vae, seed=0).generate_offline(torch.rand(1, 10, FACE_DIM), torch.randn(1, 10, 8))
    assert out["face"].shape == (1, 10, FACE_DIM) and out["z"].shape == (1, 3, 4)


def _lag_copy_accuracy(rel_span: int, lag: int = 6, steps: int = 150, V: int = 8, T: int = 64, W: int = 4) -> float:
    """Train a tiny token predictor on listener = speaker delayed by `lag` frames (piecewise-constant speaker tokens,
    window W < lag so the trigger is always visible) and return its greedy accuracy on the frames where the listener
    changes token (the reactions), generated window by window."""
    torch.manual_seed(0)
    m = ReactionTokenPredictor(ReactionTokenPredictorConfig(vocab_size=V, audio_dim=8, feature_dim=32, n_encoder_layers=1,
                                                            n_decoder_layers=1, window=W, max_seq_len=T, dropout=0.0,
                                                            rel_span=rel_span))
    opt = torch.optim.AdamW(m.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(1)

    def batch(n=16):
        s = torch.zeros(n, T, dtype=torch.long)
        for i in range(n):
            t = 0
            while t < T:
                run = int(torch.randint(3, 11, (1,), generator=g))
                s[i, t:t + run] = int(torch.randint(0, V, (1,), generator=g))
                t += run
        return s, torch.zeros(n, T, 8), torch.cat([torch.zeros(n, lag, dtype=torch.long), s[:, :-lag]], 1)

    for _ in range(steps):
        s, a, lis = batch()
        loss = token_batch_loss(m, {"speaker_tokens": s, "speaker_audio": a, "listener_tokens": lis})["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    m.eval()
    s, a, lis = batch(64)
    with torch.no_grad(): out = m.generate(s, a, temperature=0)["tokens"]
    change = torch.zeros_like(lis, dtype=torch.bool)
    change[:, lag + 1:] = lis[:, lag + 1:] != lis[:, lag:-1]
    return float((out == lis)[change].float().mean())


def test_learned_relative_bias_learns_a_lag():
    """A listener that answers `lag` frames after the speaker: with the learned relative-position bias (rel_span) the
    predictor gets the reactions right; with ALiBi's monotone distance decay alone it gets markedly fewer (0.77 vs 0.97)."""
    with_rel, alibi = _lag_copy_accuracy(16), _lag_copy_accuracy(0)
    assert with_rel >= 0.93, with_rel
    assert with_rel - alibi >= 0.1, (with_rel, alibi)


def test_relative_bias_streams_like_offline():
    "rel_span models: the window-by-window cached generation equals the parallel pass (FSQ logits, VAE faces), and the bias matters."
    m = tiny_tok(rel_span=6, max_seq_len=32).eval()
    with torch.no_grad():
        for mod in m.modules():
            if hasattr(mod, "rel_bias"): mod.rel_bias.normal_(generator=torch.Generator().manual_seed(3))
    t, a = torch.randint(0, 8, (2, 30)), torch.randn(2, 30, 8)
    out = m.generate(t, a, generator=torch.Generator().manual_seed(0))
    with torch.no_grad(): assert torch.allclose(m(t, a, out["tokens"]), out["logits"], atol=1e-5)
    v = tiny_vae(rel_span=5).eval()
    with torch.no_grad():
        for mod in v.modules():
            if hasattr(mod, "rel_bias"): mod.rel_bias.normal_(generator=torch.Generator().manual_seed(4))
    spk, aud = torch.rand(1, 24, FACE_DIM), torch.randn(1, 24, 8)                 # 24 > max_seq_len 16: caches are cropped
    streamed = v.sample(spk, aud, generator=torch.Generator().manual_seed(5))
    g = torch.Generator().manual_seed(5)
    eps = torch.stack([torch.randn(1, 4, generator=g) for _ in range(6)], 1)[:, None]   # the same draws, in order
    with torch.no_grad(): par = v(spk, aud, streamed["face"][:, 0], eps=eps)
    assert torch.allclose(par["face"], streamed["face"], atol=1e-5)              # streamed = parallel pass, with the bias
    v0 = tiny_vae(rel_span=5).eval()                                              # the bias matters: zero it, output moves
    with torch.no_grad(): assert (v0(spk, aud, streamed["face"][:, 0], eps=eps)["face"] - par["face"]).abs().max() > 1e-4
    with pytest.raises(ValueError, match="rel_span"):
        from speechface.models.reaction_vae import FrameAttention
        FrameAttention(8, 2, rel_span=-1)


def test_input_dropout_hides_the_listeners_past_in_training_only():
    "input_dropout=0.99: in training the logits barely depend on the listener's tokens; in eval mode they do, exactly as without it."
    m = tiny_tok(input_dropout=0.99)
    t, a = torch.randint(0, 8, (2, 16)), torch.randn(2, 16, 8)
    l1, l2 = torch.randint(0, 8, (2, 16)), torch.randint(0, 8, (2, 16))
    m.train()
    torch.manual_seed(5)
    y1 = m(t, a, l1)
    torch.manual_seed(5)
    y2 = m(t, a, l2)
    changed_train = (y1 - y2).abs().amax(-1).gt(1e-6).float().mean()
    m.eval()
    plain = tiny_tok()
    plain.load_state_dict(m.state_dict())
    plain.eval()
    with torch.no_grad():
        assert torch.equal(m(t, a, l1), plain(t, a, l1))
        changed_eval = (m(t, a, l1) - m(t, a, l2)).abs().amax(-1).gt(1e-6).float().mean()
    assert changed_train < 0.5 and changed_eval > 0.8, (changed_train, changed_eval)
