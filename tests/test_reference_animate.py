"""`speechface animate` with a released FaceFormer checkpoint (a reference state_dict): the model is rebuilt from the
file plus a wav2vec2 *config* (no weights folder, no hub), the one-hot order is FaceFormer's, and `--like-reference`
gives the reference algorithm's output on FaceFormer's demo audio handling, to 1e-5."""
import pickle, subprocess
import librosa, numpy as np, pytest, soundfile as sf, torch

from reference_replica import ReferenceReplica, legacy_weight_norm_keys
from speechface.data.dataset import VOCASET
from speechface.models.audio_encoder import tiny_wav2vec2_config

V = 300


def run(*args):
    return subprocess.run(["speechface", *map(str, args)], capture_output=True, text=True)


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    "A vocaset.pth-shaped file (8 VOCASET subjects, reference key names) with the tiny wav2vec2, its config, templates, a wav."
    tmp = tmp_path_factory.mktemp("ref")
    torch.manual_seed(0)
    ref = ReferenceReplica("vocaset", 3 * V, 32, len(VOCASET.train_subjects), tiny_wav2vec2_config()).eval()
    torch.save(legacy_weight_norm_keys(ref.state_dict()), tmp / "vocaset.pth")
    tiny_wav2vec2_config().to_json_file(tmp / "tiny_wav2vec2.json")
    rng = np.random.default_rng(0)
    tpl = {"FaceTalk_170809_00138_TA": rng.normal(0, 0.05, (V, 3)).astype(np.float32)}
    (tmp / "templates.pkl").write_bytes(pickle.dumps(tpl, protocol=2))
    t = np.arange(int(2.3 * 22050)) / 22050                                  # 2.3 s, 22.05 kHz stereo: both get resampled
    x = 0.3 * np.sin(2 * np.pi * (120 + 80 * t) * t) * (1 + np.sin(2 * np.pi * 3 * t)) + 0.02 * rng.normal(size=t.size)
    sf.write(tmp / "speech.wav", np.stack([x, 0.8 * x], 1), 22050)
    runs = {mode: run(*_args(tmp, tmp / f"{mode}.npy", *extra))
            for mode, extra in (("default", []), ("like_reference", ["--like-reference"]))}
    for r in runs.values(): assert r.returncode == 0, r.stderr
    return tmp, ref, tpl


def _args(tmp, out, *extra):
    return ["animate", tmp / "speech.wav", "--ckpt", tmp / "vocaset.pth", "--wav2vec2-config", tmp / "tiny_wav2vec2.json",
            "--templates", tmp / "templates.pkl", "--template", "FaceTalk_170809_00138_TA",
            "--style", "FaceTalk_170725_00137_TA", "--out", out, *extra]


def test_like_reference_equals_the_reference_algorithm(released):
    tmp, ref, tpl = released
    got = np.load(tmp / "like_reference.npy")
    wav, _ = librosa.load(tmp / "speech.wav", sr=16000)                      # FaceFormer's demo.py, step by step
    audio = (wav - wav.mean()) / np.sqrt(wav.var() + 1e-7)                   # Wav2Vec2Processor's normalisation
    oh = torch.eye(8)[VOCASET.train_subjects.index("FaceTalk_170725_00137_TA")][None]
    want = ref.predict(torch.from_numpy(audio)[None], torch.from_numpy(tpl["FaceTalk_170809_00138_TA"].reshape(1, -1)), oh)[0].numpy()
    assert got.shape == want.shape == (68, 3 * V)                           # int(N50 / 50 · 30) frames for 2.3 s
    assert np.abs(got - want).max() <= 1e-5


def test_default_frame_count_follows_the_audio(released):
    tmp, _, _ = released
    got, ref_mode = np.load(tmp / "default.npy"), np.load(tmp / "like_reference.npy")
    assert got.shape == (round(2.3 * 30), 3 * V)                            # 69: the audio's duration at 30 fps
    assert np.abs(got[:len(ref_mode)] - ref_mode).max() > 0                  # the option changes the front end


@pytest.mark.parametrize("drop,expect", [("--templates", "carries no face templates; pass the dataset's templates.pkl (--templates"),
                                         ("--wav2vec2-config", "768 = wav2vec2-base")])
def test_released_checkpoint_errors_are_one_line(released, drop, expect):
    tmp, _, _ = released
    args = _args(tmp, tmp / "x.npy")
    i = args.index(drop)
    del args[i:i + 2]
    r = run(*args)
    assert r.returncode == 2 and expect in r.stderr and "Traceback" not in r.stderr
    assert r.stderr.startswith("speechface animate: error: ")
