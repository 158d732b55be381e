"""ARKit export (speechface.export.arkit): the Live Link Face CSV layout, the CSV and JSON round trips, known weights
recovered through the basis, and bad inputs refused with messages that say what to do."""
import csv, json

import numpy as np
import pytest

from speechface.core import DataFileError, UserError
from speechface.data.head import HeadShape, build_head
from speechface.export.arkit import (ARKIT_NAMES, LIVE_LINK_COLUMNS, ArkitError, arkit_basis, arkit_motion,
                                     live_link_timecode, procedural_head, read_arkit_json, read_live_link_csv,
                                     solve_arkit_weights, write_arkit_json, write_live_link_csv)

# The header row of a recorded Live Link Face take, as public importers of real takes quote it (note JawRight before
# JawLeft and MouthRight before MouthLeft: the CSV's order, not the UDP packet's).
TAKE_HEADER = (
    "Timecode,BlendShapeCount,EyeBlinkLeft,EyeLookDownLeft,EyeLookInLeft,EyeLookOutLeft,EyeLookUpLeft,EyeSquintLeft,"
    "EyeWideLeft,EyeBlinkRight,EyeLookDownRight,EyeLookInRight,EyeLookOutRight,EyeLookUpRight,EyeSquintRight,EyeWideRight,"
    "JawForward,JawRight,JawLeft,JawOpen,MouthClose,MouthFunnel,MouthPucker,MouthRight,MouthLeft,MouthSmileLeft,"
    "MouthSmileRight,MouthFrownLeft,MouthFrownRight,MouthDimpleLeft,MouthDimpleRight,MouthStretchLeft,MouthStretchRight,"
    "MouthRollLower,MouthRollUpper,MouthShrugLower,MouthShrugUpper,MouthPressLeft,MouthPressRight,MouthLowerDownLeft,"
    "MouthLowerDownRight,MouthUpperUpLeft,MouthUpperUpRight,BrowDownLeft,BrowDownRight,BrowInnerUp,BrowOuterUpLeft,"
    "BrowOuterUpRight,CheekPuff,CheekSquintLeft,CheekSquintRight,NoseSneerLeft,NoseSneerRight,TongueOut,HeadYaw,HeadPitch,"
    "HeadRoll,LeftEyeYaw,LeftEyePitch,LeftEyeRoll,RightEyeYaw,RightEyePitch,RightEyeRoll")


@pytest.fixture(scope="module")
def subject():
    "A procedural subject's template (the tiny corpus' 300 vertices, a random shape) and its basis."
    head = build_head(300, HeadShape.random(np.random.default_rng(7)))
    return head.vertices, arkit_basis(head.vertices)


def random_weights(rng, T=30):
    "Weights in [0, 1] with exact zeros and ones (bounds that the solver must hit)."
    w = rng.uniform(0, 1, (T, len(ARKIT_NAMES))) * (rng.random((T, len(ARKIT_NAMES))) < 0.6)
    w[rng.random(w.shape) < 0.05] = 1.0
    return w


def test_csv_has_live_link_face_header_and_rows(tmp_path):
    w = random_weights(np.random.default_rng(0), 5)
    path = write_live_link_csv(tmp_path / "take.csv", w, fps=30)
    rows = list(csv.reader(path.open()))
    assert ",".join(rows[0]) == TAKE_HEADER
    assert tuple(rows[0]) == LIVE_LINK_COLUMNS
    assert [r[0] for r in rows[1:]] == ["00:00:00:00.000", "00:00:00:02.000", "00:00:00:04.000", "00:00:00:06.000",
                                        "00:00:00:08.000"]                       # FF counts 60 per second
    for r, wi in zip(rows[1:], w):
        assert len(r) == 63 and r[1] == "61"
        assert [float(v) for v in r[-9:]] == [0.0] * 9                          # no head or eye rotation
        np.testing.assert_allclose([float(v) for v in r[2:54]], wi, atol=5e-7)


def test_csv_roundtrip_keeps_names_times_and_weights(tmp_path):
    rng = np.random.default_rng(1)
    for fps, start in ((30, 0.0), (25, 3661.25), (59.94, 50_000.0)):
        w = rng.uniform(0, 1, (40, len(ARKIT_NAMES)))
        names, times, back = read_live_link_csv(write_live_link_csv(tmp_path / "t.csv", w, fps=fps, start=start))
        assert names == ARKIT_NAMES
        np.testing.assert_allclose(times, start + np.arange(40) / fps, atol=1e-5)
        np.testing.assert_allclose(back, w, atol=5e-7)


def test_timecode_carries_never_write_frame_60():
    assert live_link_timecode(59.9999999) == "00:01:00:00.000"
    assert live_link_timecode(3600 - 1e-7) == "01:00:00:00.000"
    for i in range(200):                                                       # a 59.94 fps take: FF stays 00..59
        ff = live_link_timecode(i / 59.94).split(":")[3]
        assert 0 <= float(ff) < 60


def test_csv_reader_accepts_camelcase_and_any_column_order(tmp_path):
    w = np.random.default_rng(2).uniform(0, 1, (3, len(ARKIT_NAMES)))
    lines = write_live_link_csv(tmp_path / "t.csv", w, fps=30).read_text().splitlines()
    table = [l.split(",") for l in lines]
    order = [0, 1] + list(range(53, 1, -1)) + list(range(54, 63))              # the 52 shapes reversed
    table[0] = [n[:1].lower() + n[1:] if 2 <= i < 54 else n for i, n in enumerate(table[0])]
    (tmp_path / "r.csv").write_text("\n".join(",".join(r[i] for i in order) for r in table))
    names, _, back = read_live_link_csv(tmp_path / "r.csv")
    assert names == ARKIT_NAMES[::-1]
    np.testing.assert_allclose(back, w[:, ::-1], atol=5e-7)


def test_json_roundtrip(tmp_path):
    w = random_weights(np.random.default_rng(3), 12)
    path = write_arkit_json(tmp_path / "w.json", w, fps=30)
    doc = json.loads(path.read_text())
    assert doc["names"] == list(ARKIT_NAMES) and doc["fps"] == 30 and doc["n_frames"] == 12
    names, fps, back = read_arkit_json(path)
    assert names == ARKIT_NAMES and fps == 30.0
    np.testing.assert_allclose(back, w, atol=5e-7)


def test_weights_to_motion_to_weights_recovers_known_weights(subject):
    template, basis = subject
    w = random_weights(np.random.default_rng(4))
    motion = arkit_motion(w, template, basis)                                  # (T, V, 3)
    np.testing.assert_allclose(solve_arkit_weights(motion, template, basis), w, atol=1e-6)
    flat = motion.reshape(len(motion), -1)                                     # (T, 3V) works the same
    np.testing.assert_allclose(solve_arkit_weights(flat, template, basis, lip_weight=1.0), w, atol=1e-6)


def test_basis_from_template_equals_basis_from_head():
    shape = HeadShape.random(np.random.default_rng(5))
    head = build_head(400, shape)
    np.testing.assert_allclose(arkit_basis(head.vertices), arkit_basis(head), atol=1e-7)


def test_solved_weights_are_bounded_for_an_off_basis_motion(subject):
    template, basis = subject
    rng = np.random.default_rng(6)
    motion = template + rng.normal(0, 0.003, (10, *template.shape))            # noise: no exact weights exist
    w = solve_arkit_weights(motion, template, basis)
    assert w.shape == (10, 52) and w.min() >= 0 and w.max() <= 1


@pytest.mark.parametrize("bad, expected", [
    (lambda w: w[:, :51], "expected (T, 52)"),
    (lambda w: w[0], "expected (T, 52)"),
    (lambda w: np.where(w > 0.9, np.nan, w), "non-finite"),
    (lambda w: w + 0.5, "must lie in [0, 1]"),
    (lambda w: w - 0.5, "must lie in [0, 1]"),
    (lambda w: w.astype(str), "expected numbers"),
])
def test_bad_weights_are_refused_before_writing(tmp_path, bad, expected):
    w = bad(np.random.default_rng(8).uniform(0, 1, (6, len(ARKIT_NAMES))))
    for write in (write_live_link_csv, write_arkit_json):
        with pytest.raises(ArkitError, match=None) as e: write(tmp_path / "out", w, 30)
        assert expected in str(e.value)
        assert isinstance(e.value, UserError)
    assert not list(tmp_path.iterdir()), "nothing is written for refused weights"


@pytest.mark.parametrize("fps", [0, -30, float("nan"), "30", None])
def test_bad_fps_is_refused(tmp_path, fps):
    with pytest.raises(ArkitError, match="fps="): write_live_link_csv(tmp_path / "t.csv", np.zeros((2, 52)), fps)


def test_templates_of_other_meshes_are_refused(subject):
    template, _ = subject
    cases = [(template[np.random.default_rng(9).permutation(len(template))], "retarget the motion to the procedural head"),
             (template * 1000, "millimetres"),
             (template[:150], "at least 200"),
             (template[:, :2], "expected (V, 3) or (3V,)"),
             (np.full_like(template, np.inf), "non-finite")]
    for t, expected in cases:
        with pytest.raises(ArkitError) as e: procedural_head(t)
        assert expected in str(e.value), str(e.value)


def test_bad_motion_basis_and_names_are_refused(subject):
    template, basis = subject
    motion = arkit_motion(np.zeros((4, 52)), template, basis)
    with pytest.raises(ArkitError, match=r"expected \(T, 900\) or \(T, 300, 3\)"):
        solve_arkit_weights(motion[:, :-1], template, basis)
    with pytest.raises(ArkitError, match="no frames"): solve_arkit_weights(motion[:0], template, basis)
    with pytest.raises(ArkitError, match=r"expected \(52, 300, 3\)"): solve_arkit_weights(motion, template, basis[:51])
    with pytest.raises(ArkitError, match="did you mean 'mouthClose'"):
        solve_arkit_weights(motion, template, basis, only=["jawOpen", "MouthClose"])
    with pytest.raises(ArkitError, match="lip_weight"): solve_arkit_weights(motion, template, basis, lip_weight=0)


def test_damaged_files_are_named(tmp_path):
    good = write_live_link_csv(tmp_path / "good.csv", np.full((3, 52), 0.5), fps=30).read_text().splitlines()
    cases = {"empty.csv": ("", "empty"),
             "noheader.csv": ("\n".join(good[1:]), "the header starts"),
             "lacks.csv": ("\n".join([good[0].replace("JawOpen", "JawOpenX")] + good[1:]), "lacks JawOpen"),
             "timecode.csv": ("\n".join(good[:2] + ["1:2:3" + good[2][good[2].index(","):]]), "line 3: timecode"),
             "number.csv": ("\n".join(good[:2] + [good[2].replace("0.500000", "half", 1)]), "line 3:"),
             "short.csv": ("\n".join(good[:3] + [good[3][:40]]), "line 4:"),
             "frames.csv": (good[0], "no frames")}
    for name, (text, expected) in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(DataFileError) as e: read_live_link_csv(tmp_path / name)
        assert expected in str(e.value), (name, str(e.value))
    (tmp_path / "w.json").write_text('{"format": "speechface.arkit/1", "fps": 30, "names": [], "weights": []}')
    with pytest.raises(DataFileError, match="names"): read_arkit_json(tmp_path / "w.json")
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(DataFileError, match="not JSON"): read_arkit_json(tmp_path / "x.json")
    with pytest.raises(FileNotFoundError, match="does not exist"): read_live_link_csv(tmp_path / "missing.csv")
