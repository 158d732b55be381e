"""End-to-end: `speechface train trainer=reaction_fsq|reaction_vae` on the tiny dyadic corpus, resume, reload and
generate, and bad settings stopped with one line naming the key."""
import numpy as np, pytest

from clirun import run

TINY_FSQ = ["trainer=reaction_tiny", "trainer.epochs=2", "trainer.tokenizer.epochs=2"]
TINY_VAE = ["trainer=reaction_vae", "trainer.epochs=2", "trainer.batch_size=4", "trainer.crop=64", "trainer.feature_dim=32",
            "trainer.latent_dim=16", "trainer.n_heads=2", "trainer.n_encoder_layers=1", "trainer.n_decoder_layers=1", "trainer.n_samples=2"]


@pytest.fixture(scope="module")
def dyadic():
    from speechface.data.dyadic import cached_dyadic_corpus
    return cached_dyadic_corpus("tiny")


@pytest.fixture(scope="module")
def runs(tmp_path_factory, dyadic):
    out = tmp_path_factory.mktemp("reaction")
    common = ["dataset=dyadic", f"dataset.root={dyadic}", f"out_dir={out}", "threads=1"]
    for name, ov in (("fsq", TINY_FSQ), ("vae", TINY_VAE)):
        r = run("train", *common, *ov, f"run={name}", "--quiet")
        assert f"run {out / name}: 2 epochs" in r.stdout, r.stdout
    return out, common


@pytest.mark.parametrize("name", ["fsq", "vae"])
def test_run_folder(runs, name):
    out, _ = runs
    d = out / name
    for f in ("best.pt", "last.pt", "metrics.csv", "config.json"): assert (d / f).is_file(), f
    rows = (d / "metrics.csv").read_text().splitlines()
    assert len(rows) == 3 and ("val_ce" if name == "fsq" else "val_rec") in rows[0]
    if name == "fsq": assert (d / "tokenizer" / "best.pt").is_file()
    import torch
    ck = torch.load(d / "best.pt", weights_only=True)                    # plain data, config inside
    assert ck["kind"] == f"reaction_{name}" and "config" in ck and "audio" in ck


@pytest.mark.parametrize("name", ["fsq", "vae"])
def test_reload_and_generate(runs, dyadic, name):
    from speechface.data.react import REACTDataset
    from speechface.train.reaction import load_reaction_model, generate_reactions
    out, _ = runs
    rm = load_reaction_model(out / name)
    ds = REACTDataset(dyadic, "test", mirror=True, n_frames=251)
    emo = generate_reactions(rm, ds, n_samples=2, seed=3)
    assert emo.shape == (len(ds), 2, 251, 25) and np.isfinite(emo).all()
    assert np.array_equal(emo, generate_reactions(rm, ds, n_samples=2, seed=3))
    # the K reactions to one speaker are different reactions, not one reaction and float noise: for every speaker the RMS
    # difference of the two is at least a tenth of the spread of real listeners' emotion (the tiny models reach ~1×)
    scale = float(np.std([np.asarray(ds[i]["listener_emotion"]) for i in range(len(ds))]))
    apart = np.sqrt(((emo[:, 0] - emo[:, 1]) ** 2).mean((1, 2)))                    # (S,)
    assert (apart > 0.1 * scale).all(), f"reactions 0 and 1 differ by RMS {apart.round(4)}; real listeners' std {scale:.3f}"
    emo2, faces = generate_reactions(rm, ds, n_samples=2, seed=3, faces=True)      # what the dyadic renderer draws
    assert np.array_equal(emo2, emo) and faces.shape == (len(ds), 2, 251, 58) and np.isfinite(faces).all()
    if name == "vae": assert rm.model.cfg.face == "openface"                       # the corpus has OpenFace CSVs: auto picks them


@pytest.mark.parametrize("name,ov", [("fsq", TINY_FSQ), ("vae", TINY_VAE)])
def test_resume(runs, name, ov):
    out, common = runs
    r = run("train", *common, *ov, f"run={name}", "trainer.epochs=3")
    assert "resumed" in r.stdout and "at epoch 2" in r.stdout
    assert "epoch 3 |" in r.stdout and "epoch 1 |" not in r.stdout
    assert len((out / name / "metrics.csv").read_text().splitlines()) == 4


@pytest.mark.parametrize("trainer,override,message", [
    ("reaction_vae", "trainer.w_diversity=-1", "trainer.w_diversity=-1.0 (float) must be a number ≥ 0"),
    ("reaction_vae", "trainer.audio=wav2vec", "trainer.audio"),
    ("reaction_vae", "trainer.face=landmarks", "trainer.face"),
    ("reaction_vae", "trainer.crop=0", "trainer.crop=0"),
    ("reaction_vae", "trainer.posterior=maybe", "trainer.posterior"),
    ("reaction_fsq", "trainer.tokenizer.levels=[1,5]", "trainer.tokenizer.levels=[1, 5] must be a list of integers ≥ 2"),
    ("reaction_fsq", "trainer.tokenizer.width=0", "trainer.tokenizer.width=0 (int) must be an integer ≥ 1"),
    ("reaction_fsq", "trainer.top_k=-2", "trainer.top_k=-2"),
    ("reaction_fsq", "trainer.tokenizer.epoch=3", "trainer.tokenizer.epoch"),
])
def test_bad_values(dyadic, tmp_path, trainer, override, message):
    r = run("train", f"trainer={trainer}", "dataset=dyadic", f"dataset.root={dyadic}", f"out_dir={tmp_path}", override, check=False)
    assert r.returncode == 2 and message in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not any(tmp_path.iterdir())                                   # stopped before writing anything


def test_not_a_react_folder(tmp_path):
    r = run("train", "trainer=reaction_fsq", "dataset=dyadic", f"dataset.root={tmp_path}", f"out_dir={tmp_path / 'o'}", check=False)
    assert r.returncode == 2 and "has no train.csv" in r.stderr and "speechface synth --preset dyadic-tiny" in r.stderr


def test_whisper_without_checkpoint_is_clear(dyadic, tmp_path):
    r = run("train", "trainer=reaction_fsq", "dataset=dyadic", f"dataset.root={dyadic}", f"out_dir={tmp_path}",
            "trainer.audio=whisper", f"trainer.whisper_dir={tmp_path / 'nowhisper'}", check=False)
    assert r.returncode == 2 and "trainer.audio=mel" in r.stderr, r.stderr


def test_posterior_vae(dyadic, tmp_path):
    "trainer.posterior=true trains the conditional VAE (a KL to the learned prior), and its checkpoint generates from that prior."
    from speechface.data.react import REACTDataset
    from speechface.train.reaction import load_reaction_model, generate_reactions
    run("train", "dataset=dyadic", f"dataset.root={dyadic}", f"out_dir={tmp_path}", "threads=1", *TINY_VAE, "trainer.posterior=true",
        "trainer.kl_weight=0.01", "run=cvae", "--quiet")
    rm = load_reaction_model(tmp_path / "cvae")
    assert rm.model.cfg.posterior and rm.model.cfg.kl_weight == 0.01
    post = rm.model.to_posterior[0].weight
    assert post.shape[1] == rm.model.cfg.window * rm.model.cfg.face_dim + rm.model.cfg.feature_dim
    ds = REACTDataset(dyadic, "test", mirror=True, n_frames=251)
    emo = generate_reactions(rm, ds, n_samples=2, seed=3)
    assert emo.shape == (len(ds), 2, 251, 25) and np.isfinite(emo).all()
    assert np.array_equal(emo, generate_reactions(rm, ds, n_samples=2, seed=3))
    import pandas as pd
    m = pd.read_csv(tmp_path / "cvae" / "metrics.csv")
    assert len(m) == 2 and (m["kl"] > 0).all() and np.isfinite(m["kl"]).all(), m          # KL(posterior || prior) was trained
