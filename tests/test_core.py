"""Bad-input tests of speechface.core: unsafe pickles and checkpoints are refused and never run."""
import os, pickle
import numpy as np, pytest, torch
from speechface.core import safe_load_pickle, UnsafePickleError, load_checkpoint, save_checkpoint, CheckpointError


class _Payload:
    def __init__(self, marker): self.marker = marker
    def __reduce__(self): return (os.system, (f"touch {self.marker}",))


def test_pickle_payload_refused_and_not_run(tmp_path):
    marker = tmp_path / "ran"
    p = tmp_path / "templates.pkl"
    p.write_bytes(pickle.dumps({"FaceTalk": np.zeros((3, 3)), "evil": _Payload(marker)}, protocol=2))
    with pytest.raises(UnsafePickleError, match="templates.pkl.*refused to load"):
        safe_load_pickle(p)
    assert not marker.exists()


@pytest.mark.parametrize("proto", [2, 4, 5])
def test_numpy_pickles_load(tmp_path, proto):
    d = {"a": np.arange(6, dtype=np.float64).reshape(2, 3), "lips": np.array([1, 2, 3])}
    p = tmp_path / "x.pkl"; p.write_bytes(pickle.dumps(d, protocol=proto))
    out = safe_load_pickle(p)
    np.testing.assert_array_equal(out["a"], d["a"]); np.testing.assert_array_equal(out["lips"], d["lips"])


def test_truncated_pickle_names_file(tmp_path):
    p = tmp_path / "masks.pkl"; p.write_bytes(pickle.dumps({"a": np.zeros(100)})[:40])
    with pytest.raises(pickle.UnpicklingError, match="masks.pkl"):
        safe_load_pickle(p)


def test_checkpoint_with_objects_refused(tmp_path):
    marker = tmp_path / "ran"
    p = tmp_path / "evil.pt"; torch.save({"model": _Payload(marker)}, p)
    with pytest.raises(CheckpointError, match="weights-only"):
        load_checkpoint(p)
    assert not marker.exists()


def test_checkpoint_roundtrip(tmp_path):
    p = save_checkpoint(tmp_path / "ck" / "best.pt", {"w": torch.arange(3.0), "epoch": 2})
    assert load_checkpoint(p)["epoch"] == 2
