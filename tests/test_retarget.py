"""Retargeting (`speechface.export.retarget`, `speechface animate --target`): a user's head of another topology, order,
scale and orientation is animated; heads without a findable mouth, bad landmark files and misuse end in one line."""
import json

import numpy as np
import pytest
import trimesh

from speechface.data.head import build_head
from speechface.data.mesh import inner_lip_distance
from speechface.export.retarget import (RetargetError, fit_retarget, transfer, mouth_frame, regions_landmarks,
                                        check_landmarks, retarget_motion)
from test_animate_hostile import actor, animate, one_line_error, wav  # noqa: F401  (the module-scoped tiny actor)


def scrambled(head, scale=100.0, seed=0, z_up=False):
    "The head as a user's file might hold it: shuffled vertices, centimetres, rotated (optionally Z-up), moved."
    rng = np.random.default_rng(seed)
    perm = rng.permutation(head.n_vertices)
    R = np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]]) if z_up else \
        trimesh.transformations.random_rotation_matrix(rng.random(3))[:3, :3]
    v = (head.vertices.astype(np.float64) * scale) @ R.T + rng.normal(size=3)
    return v[perm], np.argsort(perm)[head.faces], R, perm


def jaw_drop(head, amount=0.01):
    "A two-frame motion: rest, then the lower face dropped (lips apart by `amount` metres at the centre)."
    v = head.vertices.astype(np.float64)
    m = np.stack([v, v.copy()])
    lower = head.sphere[:, 1] < head.shape.mouth_elev                        # below the mouth line (elevation on the sphere)
    m[1, lower, 1] -= amount
    return m


@pytest.mark.parametrize("z_up", [False, True], ids=["random_rotation", "z_up"])
def test_the_lips_part_on_the_target(z_up):
    src = build_head(800)
    tv, tf, R, perm = scrambled(build_head(1800), z_up=z_up)
    rt = fit_retarget(src.vertices, src.faces, tv, tf)
    out = transfer(rt, jaw_drop(src), src.vertices, tv)
    assert out.shape == (2, 1800, 3)
    np.testing.assert_allclose(out[0], tv, atol=1e-4)                        # rest stays rest
    up, lo = rt.target.lip_pairs()
    gap = inner_lip_distance(out.reshape(2, -1), up, lo)
    assert gap[1] > gap[0] + 0.5, gap                                         # ~1 cm × 100 (centimetres), lips apart
    disp = np.empty_like(out[1])
    disp[perm] = (out[1] - tv) @ R / 100                                      # in the head's own frame and metres
    assert disp[:, 1].min() < -0.008 and disp[:, 1].max() < 1e-3             # the jaw goes down, nothing goes up


def test_a_closed_mouth_needs_landmarks_and_works_with_them():
    head = build_head(800)
    c, up, lo = head.regions["lip_corners"], *head.inner_lip_pairs                # sew the mouth shut: a head without an opening
    U, L = np.r_[c[0], up, c[1]], np.r_[c[0], lo, c[1]]
    strip = [t for k in range(len(U) - 1) for t in ((U[k], L[k], L[k + 1]), (U[k], L[k + 1], U[k + 1])) if len(set(t)) == 3]
    closed = trimesh.Trimesh(head.vertices, np.concatenate([head.faces, strip]), process=False)
    with pytest.raises(RetargetError, match="no mouth opening found"):
        mouth_frame(closed.vertices, closed.faces)
    lm = check_landmarks({k: v.tolist() for k, v in regions_landmarks(head.regions).items()}, len(closed.vertices))
    fr = mouth_frame(closed.vertices, closed.faces, lm)
    assert set(fr.upper) == set(head.regions["inner_lip_upper"])
    out = retarget_motion(jaw_drop(head), head.vertices, head.faces, closed.vertices, closed.faces, target_landmarks=lm)
    gap = inner_lip_distance(out.reshape(2, -1), *fr.lip_pairs())
    assert gap[1] > gap[0] + 0.005


def test_bad_landmarks_are_named():
    with pytest.raises(RetargetError, match="index 5000 is out of range for a mesh of 800 vertices"):
        check_landmarks({"mouth_corners": [1, 5000]}, 800)
    with pytest.raises(RetargetError, match="mouth_corners takes 2"):
        check_landmarks({"mouth_corners": [1, 2, 3]}, 800)
    with pytest.raises(RetargetError, match="must be vertex indices"):
        check_landmarks({"nose_tip": "tip"}, 800)
    head = build_head(800)
    with pytest.raises(RetargetError, match="not both on one boundary loop"):
        mouth_frame(head.vertices, head.faces, {"mouth_corners": np.array([0, 1])})


# ---------------------------------------------------------------------------------------------------- the CLI
@pytest.fixture(scope="module")
def heads(tmp_path_factory, tiny_corpus):
    "The tiny corpus' head remeshed at 700 vertices and scrambled, as an .obj; a ball (no mouth); a landmark file."
    import pickle
    tmp = tmp_path_factory.mktemp("heads")
    tv, tf, _, _ = scrambled(build_head(700))
    trimesh.Trimesh(tv, tf, process=False).export(tmp / "my_head.obj")
    trimesh.creation.icosphere(3).export(tmp / "ball.obj")
    (tmp / "bad.json").write_text(json.dumps({"mouth_corners": [2, 99999]}))
    wav(tmp / "speech.wav", 1.0)
    assert len(pickle.loads((tiny_corpus / "templates.pkl").read_bytes())) > 0
    return tmp


def test_animate_a_target_head(actor, heads, tmp_path):  # noqa: F811
    r = animate(actor, heads / "speech.wav", tmp_path / "out.npy", "--target", heads / "my_head.obj")
    assert r.returncode == 0, r.stderr[-2000:]
    m = np.load(tmp_path / "out.npy")
    assert m.shape == (30, 700 * 3), m.shape                                  # 1 s at 30 fps, the target's vertices
    rest = trimesh.load(heads / "my_head.obj", process=False).vertices
    assert np.abs(m.reshape(30, 700, 3) - rest).max() < 5.0                    # centimetres: moves, stays on the head
    r = animate(actor, heads / "speech.wav", tmp_path / "frames.obj", "--target", heads / "my_head.obj")
    assert r.returncode == 0, r.stderr[-2000:]
    first = trimesh.load(tmp_path / "frames" / "frame_00000.obj", process=False)
    assert len(first.vertices) == 700 and len(list((tmp_path / "frames").iterdir())) == 30


@pytest.mark.parametrize("args,needles", [
    (["--target", "ball.obj"], ["no mouth opening found", "--landmarks"]),
    (["--target", "my_head.obj", "--landmarks", "bad.json"], ["bad.json", "99999 is out of range", "700 vertices"]),
    (["--landmarks", "bad.json"], ["--landmarks belongs to a --target head"]),
    (["--target", "missing.obj"], ["missing.obj", "does not exist"]),
], ids=["no_mouth", "landmark_out_of_range", "landmarks_alone", "missing_target"])
def test_animate_target_errors_are_one_line(actor, heads, tmp_path, args, needles):  # noqa: F811
    args = [str(heads / a) if a.endswith((".obj", ".json")) else a for a in args]
    one_line_error(animate(actor, heads / "speech.wav", tmp_path / "out.npy", *args), *needles)


@pytest.mark.parametrize("target", [False, True], ids=["own_face", "target_head"])
def test_animate_to_gltf(actor, heads, tmp_path, target):  # noqa: F811
    "--out x.glb writes the (retargeted) mesh with a weights animation and the speech beside it; re-read, it is the .npy."
    from speechface.export.gltf import read_gltf_motion
    extra = ["--target", heads / "my_head.obj"] if target else []
    for out in ("out.npy", "out.glb"):
        r = animate(actor, heads / "speech.wav", tmp_path / out, *extra)
        assert r.returncode == 0, r.stderr[-2000:]
    m = np.load(tmp_path / "out.npy")
    neutral, faces, back = read_gltf_motion(tmp_path / "out.glb", np.arange(len(m)) / 30)
    V = 700 if target else 300
    assert neutral.shape == (V, 3) and back.shape == (len(m), V, 3)
    size = np.linalg.norm(np.ptp(neutral, axis=0))
    assert np.abs(back.reshape(len(m), -1) - m).max() <= 1e-5 * size
    assert (tmp_path / "out.wav").is_file()


def test_animate_target_video_shows_both_faces(actor, heads, tmp_path):  # noqa: F811
    from speechface.viz.video import video_info
    r = animate(actor, heads / "speech.wav", tmp_path / "both.mp4", "--target", heads / "my_head.obj")
    assert r.returncode == 0, r.stderr[-2000:]
    info = video_info(tmp_path / "both.mp4")
    assert info["n_frames"] == 30 and info["width"] == 2 * 384          # two 384-pixel panels: the actor's face, the target
    assert info["audio_codec"] == "aac"


def test_animate_to_arkit(actor, heads, tmp_path):  # noqa: F811
    "ARKit weights as a Live Link Face CSV and JSON; a .glb whose morph targets are the 52 named shapes, on a target head too."
    from speechface.export.arkit import ARKIT_NAMES, LIVE_LINK_COLUMNS, read_live_link_csv, read_arkit_json
    from speechface.export.gltf import read_gltf_animation
    for out in ("w.csv", "w.json"):
        r = animate(actor, heads / "speech.wav", tmp_path / out)
        assert r.returncode == 0, r.stderr[-2000:]
    assert (tmp_path / "w.csv").read_text().splitlines()[0].split(",") == list(LIVE_LINK_COLUMNS)
    names, times, w = read_live_link_csv(tmp_path / "w.csv")
    assert list(names) == list(ARKIT_NAMES) and w.shape == (30, 52) and w.min() >= 0 and w.max() <= 1
    assert w[:, list(ARKIT_NAMES).index("jawOpen")].max() > 0          # the actor opens the jaw somewhere in a second of speech
    names_j, fps, wj = read_arkit_json(tmp_path / "w.json")
    np.testing.assert_allclose(wj, w, atol=1e-4)
    for extra, V in (([], 300), (["--target", heads / "my_head.obj"], 700)):
        r = animate(actor, heads / "speech.wav", tmp_path / "a.glb", "--arkit", *extra)
        assert r.returncode == 0, r.stderr[-2000:]
        g = read_gltf_animation(tmp_path / "a.glb")
        assert list(g["target_names"]) == list(ARKIT_NAMES) and g["neutral"].shape == (V, 3)
        np.testing.assert_allclose(g["weights"], w, atol=1e-4)
    one_line_error(animate(actor, heads / "speech.wav", tmp_path / "x.npy", "--arkit"), "--arkit", ".glb or .gltf")


def test_animate_a_folder_to_arkit_csv(actor, heads, tmp_path):  # noqa: F811
    "--format arkit-csv over a folder of recordings: one Live Link Face CSV per file."
    from speechface.export.arkit import read_live_link_csv
    (tmp_path / "in").mkdir()
    for name, s in (("a", 1.0), ("b", 0.5)): wav(tmp_path / "in" / f"{name}.wav", s)
    r = animate(actor, tmp_path / "in", tmp_path / "out", "--format", "arkit-csv")
    assert r.returncode == 0, r.stderr[-2000:]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.csv", "b.csv"]
    assert read_live_link_csv(tmp_path / "out" / "b.csv")[2].shape == (15, 52)


def test_a_head_with_an_open_neck_finds_its_mouth():
    "A second boundary loop (the neck cut open, as FLAME's and most scanned heads have) does not hide the mouth."
    head = build_head(1200)
    neck = np.zeros(head.n_vertices, bool)
    neck[head.regions["neck"]] = True
    open_neck = head.faces[~neck[head.faces].all(1)]
    used = np.unique(open_neck)
    remap = np.full(head.n_vertices, -1)
    remap[used] = np.arange(len(used))
    v, f = head.vertices[used], remap[open_neck]
    from speechface.viz.face import boundary_loops
    assert len([loop for loop in boundary_loops(f) if len(loop) >= 4]) == 2
    fr = mouth_frame(v, f)
    assert set(remap[head.regions["inner_lip_upper"]]) == set(fr.upper)
    src = build_head(800)
    out = retarget_motion(jaw_drop(src), src.vertices, src.faces, v, f)
    gap = inner_lip_distance(out.reshape(2, -1), *fr.lip_pairs())
    assert gap[1] > gap[0] + 0.005


def test_gltf_beside_its_own_recording_leaves_the_recording_alone(actor, heads, tmp_path):  # noqa: F811
    "--out talk.glb next to talk.wav: the speech 'beside it' is that recording; it must not be re-encoded over itself."
    import soundfile as sf
    rec = tmp_path / "talk.wav"
    x = np.sin(np.linspace(0, 400 * np.pi, 22050)).astype(np.float32) * 0.3
    sf.write(rec, x, 22050, subtype="FLOAT")                           # float at 22.05 kHz: a rewrite would change the bytes
    before = rec.read_bytes()
    for extra in ([], ["--arkit"]):
        r = animate(actor, rec, tmp_path / "talk.glb", *extra)
        assert r.returncode == 0, r.stderr[-2000:]
        assert rec.read_bytes() == before
