"""A speechface .glb played by other tools: three.js in Debian's Chromium (driven by Playwright) and Khronos' glTF-Validator.

A real utterance of the tiny synthetic corpus is written with `speechface.export.gltf.write_gltf`; three.js renders a
frame with closed lips and one with the mouth wide open (tools/gltf_screenshots.py, tools/gltf_viewer/viewer.html).
The pictures must differ around the mouth far more than anywhere else, a repeated time must give the same picture,
and the morph weights three.js applies must be the ones the file holds. Skips only when Chromium or the viewer's npm
install is missing (CI installs both: `npm ci --prefix tools/gltf_viewer`).
"""
import json, shutil, subprocess, sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import gltf_screenshots as shots  # noqa: E402

from speechface.export.gltf import read_gltf_animation, sample_weights, write_gltf  # noqa: E402

SIZE = 320   # pixels of each picture


@pytest.fixture(scope="module")
def played(tmp_path_factory, tiny_corpus):
    "The utterance's glb, its closed and open frames, and three.js' pictures at closed, open and closed again."
    why = shots.missing()
    if why: pytest.skip(why)
    u = shots.utterance(tiny_corpus)
    glb = write_gltf(tmp_path_factory.mktemp("gltf") / f"{u['stem']}.glb", u["neutral"], u["faces"], u["fps"],
                     motion=u["motion"], audio=u["wav"])["path"]
    closed, wide = shots.closed_and_open(u["motion"], u["regions"])
    cam = shots.camera_for(u["neutral"])
    times = [closed / u["fps"], wide / u["fps"], closed / u["fps"]]
    pics = shots.screenshots(glb, times, cam, SIZE, out_dir=ROOT / "tests" / "artifacts")
    lips = u["motion"][[closed, wide]][:, u["regions"]["lips"]].reshape(-1, 3)
    return {**u, "glb": glb, "frames": (closed, wide), "camera": cam, "shots": pics,
            "box": shots.mouth_box(lips, cam, SIZE)}


def diff(a, b) -> np.ndarray:
    "(H, W) mean absolute difference over the colour channels, in 0..255."
    return np.abs(a.astype(np.int16) - b.astype(np.int16)).mean(-1)


def test_the_frames_are_closed_and_open(played):
    from speechface.data.mesh import inner_lip_distance
    d = inner_lip_distance(played["motion"][list(played["frames"])], played["regions"]["inner_lip_upper"],
                           played["regions"]["inner_lip_lower"])
    assert d[0] < 1e-4 and d[1] > 5e-3, d                               # shut vs. more than 5 mm apart
    assert 0 < played["frames"][0] < len(played["motion"]) - 1        # both need the animation, not the first keyframe


def test_the_pictures_show_a_face(played):
    img = played["shots"][0]["image"]
    assert img.shape == (SIZE, SIZE, 3)
    colours = len(np.unique(img.reshape(-1, 3), axis=0))
    background = (np.abs(img.astype(int) - img[0, 0]).sum(-1) < 6)
    assert colours > 50, f"the picture has {colours} colours: blank or flat"
    assert 0.15 < 1 - background.mean() < 0.9, f"the face covers {1 - background.mean():.0%} of the picture"
    rows, cols = played["box"]
    assert not background[rows, cols].all(), "the projected mouth box holds no face: the camera and the projection disagree"


def test_the_mouth_opens_and_nothing_else_moves_much(played):
    closed, wide, again = (s["image"] for s in played["shots"])
    rows, cols = played["box"]
    d = diff(closed, wide)
    inside = np.zeros(d.shape, bool)
    inside[rows, cols] = True
    face = ~((np.abs(closed.astype(int) - closed[0, 0]).sum(-1) < 6) & (np.abs(wide.astype(int) - wide[0, 0]).sum(-1) < 6))
    mouth, elsewhere = d[inside].mean(), d[face & ~inside].mean()
    same = diff(closed, again).mean()
    print(f"mean |closed − open| in the mouth box {mouth:.2f}, elsewhere on the face {elsewhere:.2f}; "
          f"closed twice {same:.3f} (0..255)")
    assert mouth > 5, mouth                                            # the opening shows in the picture
    assert mouth > 8 * elsewhere, (mouth, elsewhere)                   # ... and it is the mouth that changes
    assert same < 0.05 * mouth, same                                   # a time renders the same picture each time


def test_three_applies_the_files_weights(played):
    a = read_gltf_animation(played["glb"])
    for s in played["shots"]:
        three = s["three"]
        assert three["dictionary"] == {n: k for k, n in enumerate(a["target_names"])}   # names from mesh.extras.targetNames
        assert three["clips"][0]["duration"] == pytest.approx(a["times"][-1], abs=1e-6)
        assert three["material"] == "MeshStandardMaterial" and three["vertices"] == len(played["neutral"])
        expected = sample_weights(a["times"], a["weights"], [s["t"]])[0]
        np.testing.assert_allclose(three["influences"], expected, atol=1e-6)


def test_the_khronos_validator_finds_nothing(played, tmp_path):
    if not shutil.which("node"): pytest.skip("node is missing: install Node.js (Debian's nodejs package) to run glTF-Validator")
    gltf = write_gltf(tmp_path / "split.gltf", played["neutral"], played["faces"], played["fps"], motion=played["motion"],
                      normals=True)["path"]
    for f in (played["glb"], gltf):
        r = subprocess.run(["node", str(shots.VIEWER / "validate.mjs"), str(f)], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr[-2000:]
        report = json.loads(r.stdout)
        issues = report["issues"]
        assert issues["numErrors"] == issues["numWarnings"] == 0, issues["messages"]
        assert report["info"]["hasMorphTargets"] and report["info"]["animationCount"] == 1
