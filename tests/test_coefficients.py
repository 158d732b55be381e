"""The actor on BEAT2 coefficients: `speechface train trainer=coefficients dataset=beat2` end to end on the tiny
synthetic BEAT2 corpus (run folder, reload, predictions in coefficient units), and bad input stopped with a message
naming what is wrong: a wrong part, a missing split or split file, wrong dimensions, mismatched trainer and dataset."""
import shutil
import numpy as np, pytest, torch
from clirun import run


@pytest.fixture(scope="module")
def beat2():
    from speechface.data.beat2_synth import cached_beat2_corpus
    return cached_beat2_corpus("tiny")


@pytest.fixture(scope="module")
def face_run(tmp_path_factory, beat2):
    out = tmp_path_factory.mktemp("coeff")
    r = run("train", "--quiet", "trainer=coefficients", "dataset=beat2", f"dataset.root={beat2}", "dataset.part=face",
            f"out_dir={out}", "run=face", "threads=1", "trainer.epochs=2", "trainer.val_every=1", "model.feature_dim=16")
    assert f"run {out / 'face'}: 2 epochs" in r.stdout, r.stdout
    return out / "face"


def test_run_folder_reload_predict(face_run, beat2):
    from speechface.data.beat2_motion import BEAT2MotionDataset
    from speechface.train.coefficients import load_coefficient_actor, predict_coefficients
    for f in ("best.pt", "last.pt", "metrics.csv", "config.json"): assert (face_run / f).is_file(), f
    assert "val_mse" in (face_run / "metrics.csv").read_text().splitlines()[0]
    model, stats, speakers = load_coefficient_actor(face_run / "best.pt")
    assert model.cfg.motion_dim == 106 and stats.part == "face" and speakers == ["ada", "ben"]
    ds = BEAT2MotionDataset(beat2, "test", "face", stats=stats)
    pred = predict_coefficients(model, ds, stats)
    for i in ds.ids:
        assert pred[i].shape == ds.targets[i].shape and np.isfinite(pred[i]).all()
    # an untrained actor predicts the template exactly (its output layer starts at zero): the training mean in every frame
    from speechface.models.faceformer import FaceFormer
    untrained = predict_coefficients(FaceFormer(model.cfg).eval(), ds, stats)
    for i in ds.ids: np.testing.assert_allclose(untrained[i], np.broadcast_to(stats.mean, untrained[i].shape), atol=1e-6)
    # two epochs move it off the template: in normalised units the trained predictions are no longer all zero
    for i in ds.ids:
        rms = float(np.sqrt((stats.normalize(pred[i]) ** 2).mean()))
        assert rms > 1e-3, f"{i}: predictions stay on the template after two epochs (normalised RMS {rms:.2e})"
    # and the outputs are in coefficient units, not normalised ones (the jaw's 6D first row stays ≈ [1, 0, 0])
    assert np.abs(pred[ds.ids[0]][:, :3] - [1, 0, 0]).max() < 0.05


def test_gesture_part_trains(tmp_path, beat2):
    r = run("train", "--quiet", "trainer=coefficients", "dataset=beat2", f"dataset.root={beat2}", "dataset.part=gesture",
            f"out_dir={tmp_path}", "run=g", "threads=1", "trainer.epochs=1", "model.feature_dim=16")
    assert "1 epochs" in r.stdout
    ck = torch.load(tmp_path / "g" / "best.pt", weights_only=True)
    assert ck["model_config"]["motion_dim"] == 258 and ck["coefficients"]["part"] == "gesture"
    assert ck["coefficients"]["mean"].shape == (258,)


@pytest.mark.parametrize("overrides,expected", [
    (["dataset.part=lower"], "dataset.part"),                                          # a part that is not face or gesture
    (["dataset.window=0"], "dataset.window"),
    (["trainer.mode=free"], "trainer.mode"),
])
def test_bad_settings(beat2, overrides, expected):
    r = run("train", "trainer=coefficients", "dataset=beat2", f"dataset.root={beat2}", *overrides, check=False)
    assert r.returncode != 0 and expected in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_trainer_and_dataset_must_match(beat2, tmp_path):
    r = run("train", "trainer=coefficients", f"dataset.root={beat2}", check=False)           # default dataset: FaceFormer layout
    assert r.returncode != 0 and "add dataset=beat2" in r.stderr and "Traceback" not in r.stderr, r.stderr
    r = run("train", "dataset=beat2", f"dataset.root={beat2}", check=False)                   # default trainer: supervised
    assert r.returncode != 0 and "add trainer=coefficients" in r.stderr, r.stderr
    r = run("train", "trainer=coefficients", "dataset=beat2", f"dataset.root={tmp_path / 'nowhere'}", check=False)
    assert r.returncode != 0 and "speechface synth --preset beat2" in r.stderr, r.stderr


def test_window_not_whole_samples(beat2, tmp_path):
    r = run("train", "trainer=coefficients", "dataset=beat2", f"dataset.root={beat2}", "dataset.window=31",
            f"out_dir={tmp_path}", check=False)
    assert r.returncode != 0 and "multiple of 3" in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_wrong_part_in_python(beat2):
    from speechface.core import UsageError
    from speechface.data.beat2_motion import BEAT2MotionDataset
    with pytest.raises(UsageError, match="not one of face, gesture"): BEAT2MotionDataset(beat2, "train", "hands")


def test_missing_split_and_split_file(beat2, tmp_path):
    from speechface.data.beat2 import BEAT2DataError
    from speechface.data.beat2_motion import BEAT2MotionDataset
    root = tmp_path / "c"
    shutil.copytree(beat2, root)
    lines = (root / "train_test_split.csv").read_text().splitlines()
    (root / "train_test_split.csv").write_text("\n".join(l for l in lines if not l.endswith(",val")) + "\n")
    with pytest.raises(BEAT2DataError, match="no 'val' recordings"): BEAT2MotionDataset(root, "val", "face")
    (root / "train_test_split.csv").write_text("\n".join(l for l in lines if not l.endswith(",train")) + "\n")
    with pytest.raises(BEAT2DataError, match="no 'train' recordings"): BEAT2MotionDataset(root, "val", "face")
    (root / "train_test_split.csv").unlink()
    with pytest.raises(BEAT2DataError, match="no train_test_split.csv"): BEAT2MotionDataset(root, "test", "face")
    r = run("train", "trainer=coefficients", "dataset=beat2", f"dataset.root={root}", check=False)
    assert r.returncode != 0 and "not a BEAT2-layout corpus" in r.stderr, r.stderr


def test_wrong_dims(beat2, face_run):
    from speechface.core import UsageError
    from speechface.data.beat2_motion import BEAT2MotionDataset, MotionStats, jaw_opening, neutral_vector
    from speechface.train.coefficients import (load_coefficient_actor, predict_coefficients, baseline_predictions, face_metrics,
                                               evaluate_coefficients)
    model, stats, _ = load_coefficient_actor(face_run / "best.pt")
    with pytest.raises(UsageError, match="must have 258 dimensions"): MotionStats("gesture", stats.mean, stats.std)
    with pytest.raises(UsageError, match="face vectors have 106 dimensions"): stats.normalize(np.zeros((5, 258)))
    with pytest.raises(UsageError, match=r"\(T, 106\) face"): jaw_opening(np.zeros((5, 258)))
    g = BEAT2MotionDataset(beat2, "test", "gesture")
    with pytest.raises(UsageError, match="statistics are 'gesture'"): predict_coefficients(model, g, g.stats)
    with pytest.raises(UsageError, match="statistics of part 'face'"): BEAT2MotionDataset(beat2, "test", "gesture", stats=stats)
    with pytest.raises(UsageError, match=r"\(258,\) gesture vector"): baseline_predictions(g, neutral_vector("face"))
    f = BEAT2MotionDataset(beat2, "test", "face", stats=stats)
    gt = f.targets[f.ids[0]]
    with pytest.raises(ValueError, match="predict every frame"): face_metrics(gt[:5], gt)
    with pytest.raises(UsageError, match="no prediction"): evaluate_coefficients(f, {"empty": {}})
    with pytest.raises(UsageError, match="window=None"):
        predict_coefficients(model, BEAT2MotionDataset(beat2, "train", "face", window=30), stats)


def test_mesh_checkpoint_is_not_a_coefficient_actor(tmp_path):
    from speechface.core import UsageError, save_checkpoint
    from speechface.train.coefficients import load_coefficient_actor
    save_checkpoint(tmp_path / "mesh.pt", {"model": {}, "model_config": {}, "config": {}})
    with pytest.raises(UsageError, match="not written by trainer=coefficients"): load_coefficient_actor(tmp_path / "mesh.pt")


def test_cli_reward_and_rl_on_coefficients(face_run, beat2, tmp_path):
    "dataset=beat2 routes the reward trainers and RL to the coefficient versions: sync expert, score head, one RL epoch."
    common = ["dataset=beat2", f"dataset.root={beat2}", "dataset.part=face", f"out_dir={tmp_path}", "threads=1", "--quiet"]
    small = ["+trainer.model.d_model=16", "+trainer.model.n_heads=2", "+trainer.model.n_layers=1", "+trainer.model.embed_dim=8",
             "+trainer.model.conv_channels=4"]
    r = run("train", "trainer=sync_expert", "trainer.epochs=2", "trainer.seqs_per_batch=4", *small, *common)
    expert = tmp_path / "reward" / "sync_expert.pt"
    assert expert.is_file() and "sync_expert: 2 epochs" in r.stdout, r.stdout
    from speechface.models.reward import load_sync_expert
    bb = load_sync_expert(expert)
    assert bb.cfg.motion == "coefficients" and bb.cfg.motion_dim == 106            # it reads the actor's 106-d clips
    r = run("train", "trainer=reward_head", "trainer.epochs=2", f"trainer.sync_expert={expert}", *common)
    head = tmp_path / "reward" / "reward_head.pt"
    assert head.is_file(), r.stdout
    r = run("train", "trainer=rl", "trainer.variant=backprop", "trainer.epochs=1", "trainer.batch_size=2", "run=rl",
            f"trainer.init_actor={face_run / 'best.pt'}", f"trainer.sync_expert={expert}", f"trainer.head={head}", *common)
    assert f"run {tmp_path / 'rl'}: best epoch" in r.stdout, r.stdout
    from speechface.core import load_checkpoint
    assert "coefficients" in load_checkpoint(tmp_path / "rl" / "best.pt")            # the normalisation travels with the actor
    r = run("train", "trainer=rl", "run=rl2", f"trainer.init_actor={face_run / 'best.pt'}",
            f"trainer.sync_expert={expert}", f"trainer.head={head}", *common, "dataset.part=gesture", check=False)  # last wins
    assert r.returncode != 0 and "dataset.part=" in r.stderr and "Traceback" not in r.stderr, r.stderr
