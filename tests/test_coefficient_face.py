"""Bad input to the coefficient face (speechface.data.beat2_synth), the FLAME loader (speechface.data.flame), the
coefficient lip measures, video and evaluation: each fails with a message that says what was expected and the fix."""
import os, pickle, shutil, sys, types

import numpy as np
import pytest
import scipy.sparse

from speechface.core import UnsafePickleError
from speechface.data.beat2_synth import CoefficientFace, coefficient_curves, split_face_vector, expression_basis
from speechface.data.flame import (FLAME_ENV, FLAME_KEYS, FLAME_URL, FLAME_JAW, FlameModelError, FlameModelMissing,
                                   flame_model_path, flame_vertices, load_flame_model)
from speechface.metrics.coefficients import coefficient_lip_distance, shift_frames


def tiny_flame(V=10, seed=0):
    "A FLAME-structured model dict (5 joints, 2 identity + 100 expression directions)."
    rng = np.random.default_rng(seed)
    w = np.zeros((V, 5))
    w[: V // 2, 1] = 1
    w[V // 2:, FLAME_JAW] = 1
    Jr = np.zeros((5, V))
    Jr[:, :] = 1.0 / V
    return {"v_template": rng.normal(0, 0.05, (V, 3)), "shapedirs": rng.normal(0, 0.01, (V, 3, 102)),
            "posedirs": rng.normal(0, 0.001, (V, 3, 36)), "J_regressor": scipy.sparse.csc_matrix(Jr), "weights": w,
            "kintree_table": np.array([[2 ** 32 - 1, 0, 1, 1, 1], [0, 1, 2, 3, 4]]), "f": np.array([[0, 1, 2]])}


def chumpy_pickle(path, d, protocol, expression=False):
    "Write `d` as FLAME's file is: arrays wrapped in chumpy.ch.Ch objects (state dict with 'x'), a class only present while writing."
    mod, pkg = types.ModuleType("chumpy.ch"), types.ModuleType("chumpy")
    class Ch:
        def __init__(self, x): self.x, self._dirty_vars, self._itr, self._depends_on_deps = x, set(), None, {}
        def __getstate__(self):
            s = dict(self.__dict__)
            if expression:
                s.pop("x")
                s["a"], s["b"] = 1, 2          # a chumpy expression: no plain 'x'
            return s
    Ch.__module__, Ch.__qualname__, Ch.__name__ = "chumpy.ch", "Ch", "Ch"
    mod.Ch, pkg.ch = Ch, mod
    saved = {k: sys.modules.get(k) for k in ("chumpy", "chumpy.ch")}
    sys.modules["chumpy"], sys.modules["chumpy.ch"] = pkg, mod
    try:
        out = {k: (Ch(v) if k in ("v_template", "shapedirs") else v) for k, v in d.items()}
        with open(path, "wb") as f: pickle.dump(out, f, protocol=protocol)
    finally:
        for k, v in saved.items():
            if v is None: sys.modules.pop(k, None)
            else: sys.modules[k] = v


# --- the coefficient face -----------------------------------------------------------------------------------------

def test_coefficient_shapes():
    E = np.zeros((5, 100))
    with pytest.raises(ValueError, match=r"\(T, 100\).*got shape \(5, 99\)"): coefficient_curves(E[:, :99])
    with pytest.raises(ValueError, match=r"x\[None\]"): coefficient_curves(E[0])
    with pytest.raises(ValueError, match="4 frames but the expressions have 5"): coefficient_curves(E, np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"jaw must be a \(T, 3\)"): coefficient_curves(E, np.zeros((5, 6)))
    bad = E.copy()
    bad[2, 7] = np.nan
    with pytest.raises(ValueError, match="NaN/inf values.*frame 2"): coefficient_curves(bad)
    with pytest.raises(ValueError, match=r"\(T, 106\)"): split_face_vector(np.zeros((5, 100)))


def test_coefficient_roundtrip_is_exact_not_vacuous():
    rng = np.random.default_rng(1)
    c4 = rng.uniform(0, 1, (20, 4))
    E = c4 @ expression_basis()
    got = coefficient_curves(E, np.stack([0.25 * c4[:, 0], np.zeros(20), np.zeros(20)], 1))
    np.testing.assert_allclose(got[:, [0, 3, 1, 2]], c4, atol=1e-9)
    assert np.abs(got[:, [0, 3, 1, 2]] - rng.uniform(0, 1, (20, 4))).max() > 0.1   # a different curve set does not match


def test_lip_measures_bad_input():
    face = CoefficientFace()
    with pytest.raises(ValueError, match=r"\(expressions, jaw\)"): coefficient_lip_distance(face, (np.zeros((3, 100)),))
    with pytest.raises(ValueError, match="leaves nothing"): shift_frames(np.zeros(4), -4)
    np.testing.assert_array_equal(shift_frames(np.arange(5), 2), [0, 0, 0, 1, 2])
    np.testing.assert_array_equal(shift_frames(np.arange(5), -2), [2, 3, 4, 4, 4])


def test_video_without_sequences(tmp_path):
    from speechface.viz.coefficient_face import coefficient_video
    with pytest.raises(ValueError, match="no sequences"): coefficient_video(CoefficientFace(), {}, tmp_path / "x.mp4")


def test_units_and_recordings_bad_input(tmp_path):
    from speechface.data.beat2_synth import cached_beat2_corpus
    from speechface.data.beat2 import beat2_paths, write_word_textgrid
    from speechface.evaluation.coefficients import beat2_face_recordings, coefficient_units
    root = tmp_path / "beat2"
    shutil.copytree(cached_beat2_corpus("tiny"), root)
    test = beat2_face_recordings(root, "test")
    with pytest.raises(ValueError, match="one per recording"): coefficient_units(CoefficientFace(), test, [])
    short = [(r["expressions"][:10], r["jaw"][:10]) for r in test]
    with pytest.raises(ValueError, match="the prediction has 10 frames"): coefficient_units(CoefficientFace(), test, short)
    with pytest.raises(ValueError, match="no 'additional' recordings"): beat2_face_recordings(root, "additional")
    write_word_textgrid(beat2_paths(root, test[0]["id"])["text"], 3.0, [(0.0, 1.0, "hello")])
    with pytest.raises(ValueError, match="no .phones. tier.*phone alignment"): beat2_face_recordings(root, "test")


# --- FLAME ----------------------------------------------------------------------------------------------------------

def test_flame_missing_says_where_to_get_it(tmp_path, monkeypatch):
    monkeypatch.delenv(FLAME_ENV, raising=False)
    with pytest.raises(FlameModelMissing, match=f"{FLAME_ENV} is not set.*{FLAME_URL}"): flame_model_path()
    monkeypatch.setenv(FLAME_ENV, str(tmp_path / "nope.pkl"))
    with pytest.raises(FileNotFoundError, match=r"nope.pkl \(from \$SPEECHFACE_FLAME_MODEL\) is not a file"): load_flame_model()
    with pytest.raises(FlameModelMissing, match="from the path given"): load_flame_model(tmp_path / "other.npz")


def test_flame_env_var_is_used(tmp_path, monkeypatch):
    d = tiny_flame()
    with open(tmp_path / "m.pkl", "wb") as f: pickle.dump(d, f, protocol=2)
    monkeypatch.setenv(FLAME_ENV, str(tmp_path / "m.pkl"))
    np.testing.assert_array_equal(load_flame_model().v_template, d["v_template"])


@pytest.mark.parametrize("protocol", [0, 2])
def test_flame_chumpy_pickle_loads_without_chumpy(tmp_path, protocol):
    d = tiny_flame()
    chumpy_pickle(tmp_path / "generic_model.pkl", d, protocol)
    assert "chumpy" not in sys.modules
    m = load_flame_model(tmp_path / "generic_model.pkl")
    np.testing.assert_array_equal(m.v_template, d["v_template"])
    np.testing.assert_array_equal(m.shapedirs, d["shapedirs"])
    np.testing.assert_array_equal(m.J_regressor, d["J_regressor"].toarray())
    np.testing.assert_allclose(flame_vertices(m, np.zeros((2, 100)))[0], d["v_template"], atol=1e-7)


def test_flame_chumpy_expression_is_refused_with_the_conversion(tmp_path):
    chumpy_pickle(tmp_path / "g.pkl", tiny_flame(), 2, expression=True)
    with pytest.raises(FlameModelError, match="chumpy expression.*npz"): load_flame_model(tmp_path / "g.pkl")


def test_flame_pickle_cannot_run_code(tmp_path):
    class Evil:
        def __reduce__(self): return (os.system, ("touch " + str(tmp_path / "pwned"),))
    with open(tmp_path / "evil.pkl", "wb") as f: pickle.dump({"v_template": Evil()}, f, protocol=2)
    with pytest.raises(UnsafePickleError, match="refused"): load_flame_model(tmp_path / "evil.pkl")
    assert not (tmp_path / "pwned").exists()


def test_flame_bad_files(tmp_path):
    (tmp_path / "empty.pkl").write_bytes(b"")
    with pytest.raises(FlameModelError, match="empty"): load_flame_model(tmp_path / "empty.pkl")
    d = tiny_flame()
    blob = pickle.dumps(d, protocol=2)
    (tmp_path / "cut.pkl").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(FlameModelError, match="truncated"): load_flame_model(tmp_path / "cut.pkl")
    np.savez(tmp_path / "nokeys.npz", v_template=d["v_template"])
    with pytest.raises(FlameModelError, match=r"missing key\(s\).*posedirs"): load_flame_model(tmp_path / "nokeys.npz")
    plain = {k: (d[k].toarray() if k == "J_regressor" else d[k]) for k in FLAME_KEYS}
    np.savez(tmp_path / "badshape.npz", **{**plain, "weights": plain["weights"][:, :4]})
    with pytest.raises(FlameModelError, match=r"weights \(10, 4\) \(expected \(10, 5\)\)"): load_flame_model(tmp_path / "badshape.npz")
    np.savez(tmp_path / "few.npz", **{**plain, "shapedirs": plain["shapedirs"][..., :50]})
    with pytest.raises(FlameModelError, match="fewer than the 100 expressions"): load_flame_model(tmp_path / "few.npz")
    np.savez(tmp_path / "obj.npz", **{**plain, "f": np.array([None, 1], dtype=object)})
    with pytest.raises(FlameModelError, match="pickled objects"): load_flame_model(tmp_path / "obj.npz")


def test_flame_vertices_bad_input(tmp_path):
    with open(tmp_path / "m.pkl", "wb") as f: pickle.dump(tiny_flame(), f, protocol=2)
    m = load_flame_model(tmp_path / "m.pkl")
    with pytest.raises(FlameModelError, match=r"1 <= E <= 100.*\(3, 101\)"): flame_vertices(m, np.zeros((3, 101)))
    with pytest.raises(FlameModelError, match="T = 3"): flame_vertices(m, np.zeros((3, 100)), np.zeros((2, 3)))
    with pytest.raises(FlameModelError, match="NaN"): flame_vertices(m, np.full((3, 100), np.nan))
    with pytest.raises(FlameModelError, match="2 identity directions"): flame_vertices(m, np.zeros((1, 100)), shape=np.zeros(5))
