"""Bad-input tests of speechface.core: hostile pickles and checkpoints are refused without running; real-layout
data pickles (Python 2 protocol 2, NumPy 1, NumPy 2) still load."""
import base64, copyreg, os, pickle, struct, subprocess, sys
import numpy as np, pytest, torch
from speechface.core import (safe_load_pickle, UnsafePickleError, UserError, load_checkpoint, save_checkpoint,
                             CheckpointError, _SAFE_GLOBALS)


# ---------------------------------------------------------------- pickle building blocks (opcode by opcode)
def X(text: str) -> bytes:  # BINUNICODE: accepted by the unpickler under any protocol header
    b = text.encode("utf-8")
    return b"X" + struct.pack("<I", len(b)) + b

def header(proto: int) -> bytes:
    return b"" if proto < 2 else b"\x80" + bytes([proto])

def body(obj, proto: int) -> bytes:
    "pickle.dumps without its PROTO header, FRAME and STOP, to splice into a larger pickle."
    b = pickle.dumps(obj, protocol=proto)
    if proto >= 2: b = b[2:]
    if proto >= 4 and b[:1] == b"\x95": b = b[9:]
    assert b.endswith(b".")
    return b[:-1]

def in_dict_of_arrays(payload: bytes, proto: int) -> bytes:
    "A templates.pkl-shaped dict: a real (V, 3) array, then the payload under another key."
    return (header(proto) + b"}(" + X("FaceTalk_170725_00137_TA") + body(np.zeros((4, 3), np.float32), proto)
            + X("evil") + payload + b"u.")

def run_code_via(callable_pickle: bytes, code: str) -> bytes:
    "callable_pickle pushes a callable f; this calls f('exec')(code) — the dotted-walk attack's shape."
    return callable_pickle + X("exec") + b"\x85R" + X(code) + b"\x85R"

def GLOBAL(module, name): return b"c" + module.encode() + b"\n" + name.encode() + b"\n"
def STACK_GLOBAL(module, name): return X(module) + X(name) + b"\x93"


class _Payload:
    def __init__(self, fn, arg): self.fn, self.arg = fn, arg
    def __reduce__(self): return (self.fn, (self.arg,))


@pytest.fixture
def marker(tmp_path):
    m = tmp_path / "ran"
    yield m
    assert not m.exists(), "a hostile pickle ran code"


def _refused(tmp_path, data: bytes, name="templates.pkl"):
    p = tmp_path / name
    p.write_bytes(data)
    with pytest.raises(UnsafePickleError, match=name):
        safe_load_pickle(p)


# ---------------------------------------------------------------- the hostile corpus
@pytest.mark.parametrize("proto", range(6))
@pytest.mark.parametrize("fn", ["os.system", "posix.system", "subprocess.check_call", "builtins.eval", "builtins.exec"])
def test_reduce_payloads_refused(tmp_path, marker, proto, fn):
    mod, name = fn.rsplit(".", 1)
    f = getattr(__import__(mod, fromlist=[name]), name)
    arg = f"touch {marker}" if name in ("system", "check_call") else f"open({str(marker)!r}, 'w').close()"
    if name == "check_call": arg = ["touch", str(marker)]
    data = pickle.dumps({"FaceTalk_170725_00137_TA": np.zeros((4, 3)), "evil": _Payload(f, arg)}, protocol=proto)
    _refused(tmp_path, data)


_ALLOWED_MODULES = sorted({m for m, _ in _SAFE_GLOBALS} | {"numpy.dtypes", "numpy", "builtins", "__builtin__"})
_WALKS = ["__builtins__.get", "__class__.__init__.__globals__.get", "ndarray.__class__", "dtype.__init__", "os.system",
          "sys.modules.get"]

@pytest.mark.parametrize("module", _ALLOWED_MODULES)
@pytest.mark.parametrize("opcode,proto", [("GLOBAL", p) for p in range(6)] + [("STACK_GLOBAL", p) for p in (4, 5)])
def test_dotted_name_walks_refused(tmp_path, marker, module, opcode, proto):
    op = GLOBAL if opcode == "GLOBAL" else STACK_GLOBAL
    for walk in _WALKS:
        payload = run_code_via(op(module, walk), f"open({str(marker)!r}, 'w').close()")
        _refused(tmp_path, in_dict_of_arrays(payload, proto))


@pytest.mark.parametrize("proto", [0, 2, 4, 5])
@pytest.mark.parametrize("module,name", [("builtins", "getattr"), ("builtins", "__import__"), ("builtins", "eval"),
                                         ("__builtin__", "open"), ("copyreg", "_reconstructor"),
                                         ("copy_reg", "_reconstructor"), ("copyreg", "__newobj__"),
                                         ("_codecs", "lookup"), ("codecs", "encode"), ("numpy", "load"),
                                         ("numpy.dtypes", "StringDType"), ("numpy.core.multiarray", "_reconstruct.__globals__")])
def test_globals_outside_the_list_refused(tmp_path, marker, proto, module, name):
    _refused(tmp_path, in_dict_of_arrays(GLOBAL(module, name) + b")R", proto))


def test_copyreg_reconstructor_with_os_system_refused(tmp_path, marker):
    payload = (GLOBAL("copy_reg", "_reconstructor") + GLOBAL("posix", "system") + GLOBAL("__builtin__", "str")
               + X(f"touch {marker}") + b"\x87R")
    _refused(tmp_path, in_dict_of_arrays(payload, 2))


def test_codecs_encode_only_latin1(tmp_path, marker):
    payload = GLOBAL("_codecs", "encode") + X("hello") + X("rot13") + b"\x86R"
    _refused(tmp_path, in_dict_of_arrays(payload, 2))


def test_extension_registry_goes_through_the_list(tmp_path, marker):
    copyreg.add_extension("posix", "system", 0xF1)
    try: _refused(tmp_path, in_dict_of_arrays(b"\x82\xf1" + X(f"touch {marker}") + b"\x85R", 2))   # EXT1 241
    finally: copyreg.remove_extension("posix", "system", 0xF1)


@pytest.mark.parametrize("payload", [lambda m: b"(cposix\nsystem\n" + X(f"touch {m}") + b"o",   # OBJ
                                     lambda m: b"(" + X(f"touch {m}") + b"iposix\nsystem\n",      # INST
                                     lambda m: b"Pevil\n"])                                         # PERSID
def test_inst_obj_persid_refused(tmp_path, marker, payload):
    _refused(tmp_path, in_dict_of_arrays(payload(marker), 0))


def test_hostile_pickle_in_a_subprocess_leaves_no_marker(tmp_path):
    "The same dotted walk, loaded by a fresh interpreter through the dataset loader: refused, exit clean, no file."
    marker = tmp_path / "ran"
    root = tmp_path
    (root / "templates.pkl").write_bytes(in_dict_of_arrays(run_code_via(STACK_GLOBAL("numpy.dtypes", "__builtins__.get"),
                                                                        f"open({str(marker)!r}, 'w').close()"), 4))
    r = subprocess.run([sys.executable, "-c",
                        f"from speechface.data.mesh import load_templates; load_templates({str(root / 'templates.pkl')!r})"],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "refused to load 'numpy.dtypes.__builtins__.get'" in r.stderr
    assert not marker.exists()


# ---------------------------------------------------------------- real layouts still load
def _py2_pickle(d: dict) -> bytes:
    "What Python 2's cPickle.dump(d, f, 2) writes for a dict of NumPy arrays: GLOBALs under numpy.core, data as str."
    def s(t):
        b = t if isinstance(t, bytes) else t.encode("latin1")
        return b"U" + bytes([len(b)]) + b if len(b) < 256 else b"T" + struct.pack("<i", len(b)) + b
    def i(n): return b"K" + bytes([n])
    out = b"\x80\x02}("
    for k, a in d.items():
        a = np.ascontiguousarray(a)
        dt = a.dtype
        order = dt.str[0] if dt.str[0] in "<>" else "|"
        dtype = (b"cnumpy\ndtype\n" + s(dt.str[1:]) + i(0) + i(1) + b"\x87R(" + i(3) + s(order)
                 + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xff" + i(0) + b"tb")
        shape = b"(" + b"".join(i(n) for n in a.shape) + b"t"
        out += (s(k) + b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n" + i(0) + b"\x85" + s("b") + b"\x87R("
                + i(1) + shape + dtype + b"\x89" + s(a.tobytes()) + b"tb")
    return out + b"u."

_EXPECTED = {"FaceTalk_170725_00137_TA": np.arange(12, dtype=np.float32).reshape(4, 3), "lips": np.array([1, 2, 3]),
             "mask": np.array([True, False])}

def _check(out):
    for k, v in _EXPECTED.items():
        assert out[k].dtype == v.dtype
        np.testing.assert_array_equal(out[k], v)


def test_python2_protocol2_pickle_loads(tmp_path):
    p = tmp_path / "FLAME_masks.pkl"
    p.write_bytes(_py2_pickle(_EXPECTED))
    _check(safe_load_pickle(p))


# pickle.dumps of {'FaceTalk_...': arange(12, float32).reshape(4, 3), 'lips': [1 2 3], 'mask': [True False],
# 'scale': float64(0.5)} under NumPy 1.26.4 / Python 3.11, protocols 2, 4 and 5 (GLOBALs under numpy.core)
_NUMPY1 = {
 2: "gAJ9cQAoWBgAAABGYWNlVGFsa18xNzA3MjVfMDAxMzdfVEFxAWNudW1weS5jb3JlLm11bHRpYXJyYXkKX3JlY29uc3RydWN0CnECY251bXB5Cm5kYXJyYXkKcQNLAIVxBGNfY29kZWNzCmVuY29kZQpxBVgBAAAAYnEGWAYAAABsYXRpbjFxB4ZxCFJxCYdxClJxCyhLAUsESwOGcQxjbnVtcHkKZHR5cGUKcQ1YAgAAAGY0cQ6JiIdxD1JxEChLA1gBAAAAPHERTk5OSv////9K/////0sAdHESYoloBVg1AAAAAAAAAAAAwoA/AAAAQAAAQEAAAMKAQAAAwqBAAADDgEAAAMOgQAAAAEEAABBBAAAgQQAAMEFxE2gHhnEUUnEVdHEWYlgEAAAAbGlwc3EXaAJoA0sAhXEYaAmHcRlScRooSwFLA4VxG2gNWAIAAABpOHEciYiHcR1ScR4oSwNoEU5OTkr/////Sv////9LAHRxH2KJaAVYGAAAAAEAAAAAAAAAAgAAAAAAAAADAAAAAAAAAHEgaAeGcSFScSJ0cSNiWAQAAABtYXNrcSRoAmgDSwCFcSVoCYdxJlJxJyhLAUsChXEoaA1YAgAAAGIxcSmJiIdxKlJxKyhLA1gBAAAAfHEsTk5OSv////9K/////0sAdHEtYoloBVgCAAAAAQBxLmgHhnEvUnEwdHExYlgFAAAAc2NhbGVxMmNudW1weS5jb3JlLm11bHRpYXJyYXkKc2NhbGFyCnEzaA1YAgAAAGY4cTSJiIdxNVJxNihLA2gRTk5OSv////9K/////0sAdHE3YmgFWAkAAAAAAAAAAADDoD9xOGgHhnE5UnE6hnE7UnE8dS4=",  # noqa: E501
 4: "gASVywEAAAAAAAB9lCiMGEZhY2VUYWxrXzE3MDcyNV8wMDEzN19UQZSMFW51bXB5LmNvcmUubXVsdGlhcnJheZSMDF9yZWNvbnN0cnVjdJSTlIwFbnVtcHmUjAduZGFycmF5lJOUSwCFlEMBYpSHlFKUKEsBSwRLA4aUaAWMBWR0eXBllJOUjAJmNJSJiIeUUpQoSwOMATyUTk5OSv////9K/////0sAdJRiiUMwAAAAAAAAgD8AAABAAABAQAAAgEAAAKBAAADAQAAA4EAAAABBAAAQQQAAIEEAADBBlHSUYowEbGlwc5RoBGgHSwCFlGgJh5RSlChLAUsDhZRoDowCaTiUiYiHlFKUKEsDaBJOTk5K/////0r/////SwB0lGKJQxgBAAAAAAAAAAIAAAAAAAAAAwAAAAAAAACUdJRijARtYXNrlGgEaAdLAIWUaAmHlFKUKEsBSwKFlGgOjAJiMZSJiIeUUpQoSwOMAXyUTk5OSv////9K/////0sAdJRiiUMCAQCUdJRijAVzY2FsZZRoAowGc2NhbGFylJOUaA6MAmY4lImIh5RSlChLA2gSTk5OSv////9K/////0sAdJRiQwgAAAAAAADgP5SGlFKUdS4=",  # noqa: E501
 5: "gAWVwgEAAAAAAAB9lCiMGEZhY2VUYWxrXzE3MDcyNV8wMDEzN19UQZSMEm51bXB5LmNvcmUubnVtZXJpY5SMC19mcm9tYnVmZmVylJOUKJYwAAAAAAAAAAAAAAAAAIA/AAAAQAAAQEAAAIBAAACgQAAAwEAAAOBAAAAAQQAAEEEAACBBAAAwQZSMBW51bXB5lIwFZHR5cGWUk5SMAmY0lImIh5RSlChLA4wBPJROTk5K/////0r/////SwB0lGJLBEsDhpSMAUOUdJRSlIwEbGlwc5RoBCiWGAAAAAAAAAABAAAAAAAAAAIAAAAAAAAAAwAAAAAAAACUaAiMAmk4lImIh5RSlChLA2gMTk5OSv////9K/////0sAdJRiSwOFlGgPdJRSlIwEbWFza5RoBCiWAgAAAAAAAAABAJRoCIwCYjGUiYiHlFKUKEsDjAF8lE5OTkr/////Sv////9LAHSUYksChZRoD3SUUpSMBXNjYWxllIwVbnVtcHkuY29yZS5tdWx0aWFycmF5lIwGc2NhbGFylJOUaAiMAmY4lImIh5RSlChLA2gMTk5OSv////9K/////0sAdJRiQwgAAAAAAADgP5SGlFKUdS4="}  # noqa: E501

@pytest.mark.parametrize("proto", [2, 4, 5])
def test_numpy1_pickles_load(tmp_path, proto):
    p = tmp_path / "templates.pkl"
    p.write_bytes(base64.b64decode(_NUMPY1[proto]))
    out = safe_load_pickle(p)
    _check(out)
    assert out["scale"] == 0.5 and out["scale"].dtype == np.float64


@pytest.mark.parametrize("proto", range(6))
def test_numpy2_pickles_load(tmp_path, proto):
    d = {**_EXPECTED, "scale": np.float64(0.5), "dt": np.dtype("f8"), "cls": type(np.dtype("f4")), "nested": [np.int32(3), (1.5, "a")]}
    p = tmp_path / "x.pkl"
    p.write_bytes(pickle.dumps(d, protocol=proto))
    out = safe_load_pickle(p)
    _check(out)
    assert out["dt"] == np.dtype("f8") and out["cls"] is type(np.dtype("f4")) and out["nested"][0] == 3


def test_truncated_pickle_names_file(tmp_path):
    p = tmp_path / "masks.pkl"
    p.write_bytes(pickle.dumps({"a": np.zeros(100)})[:40])
    with pytest.raises(pickle.UnpicklingError, match="masks.pkl"):
        safe_load_pickle(p)


def test_checkpoint_with_objects_refused(tmp_path):
    marker = tmp_path / "ran"
    p = tmp_path / "evil.pt"
    torch.save({"model": _Payload(os.system, f"touch {marker}")}, p)
    with pytest.raises(CheckpointError, match="weights-only") as e:
        load_checkpoint(p)
    assert isinstance(e.value, UserError) and not marker.exists()


def test_checkpoint_roundtrip(tmp_path):
    p = save_checkpoint(tmp_path / "ck" / "best.pt", {"w": torch.arange(3.0), "epoch": 2})
    assert load_checkpoint(p)["epoch"] == 2
