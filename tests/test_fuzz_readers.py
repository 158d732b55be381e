"""Property-based fuzzing of every file reader: a valid file with flipped, cut, inserted or overwritten bytes (header
fields included) is either read as valid data or refused with a `UserError` (or FileNotFoundError) — never another
exception, a hang or a memory blow-up. Deterministic (derandomize); SPEECHFACE_HOSTILE_TABLE=path also writes the
example counts to <path minus suffix>.fuzz.md."""
import contextlib, io, json, os, pickle, resource, signal
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from speechface.core import UserError

EXAMPLES = 60                    # per reader; the whole file runs in well under a minute on 2 CPU cores
EXTRA_AS = 2 * 2**30             # a reader may map at most this much address space beyond what the test process holds
EXAMPLE_TIMEOUT_S = 10           # one read; longer is a hang
RUNS: dict = {}                  # reader -> examples run

INTERESTING = [0, 1, 2, 0x7F, 0xFF, 0x7FFF, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF, 2**31, 2**36 - 1]
edit = st.one_of(
    st.tuples(st.just("flip"), st.one_of(st.integers(0, 96), st.integers(0, 2**20)), st.integers(1, 255)),
    st.tuples(st.just("cut"), st.integers(0, 2**20), st.just(0)),
    st.tuples(st.just("insert"), st.one_of(st.integers(0, 96), st.integers(0, 2**20)), st.binary(min_size=1, max_size=16)),
    st.tuples(st.just("delete"), st.one_of(st.integers(0, 96), st.integers(0, 2**20)), st.integers(1, 64)),
    st.tuples(st.just("field"), st.one_of(st.integers(0, 96), st.integers(0, 2**20)), st.sampled_from(INTERESTING)),
)
edits = st.lists(edit, min_size=1, max_size=4)


def mutate(data: bytes, ops: list) -> bytes:
    "Apply byte edits; positions wrap around the current length. 'field' overwrites 4 (or 8) little-endian bytes with an extreme value."
    b = bytearray(data)
    for op, pos, arg in ops:
        n = len(b)
        if op == "cut":
            del b[pos % (n + 1):]
            continue
        if n == 0:
            b += b"\0"
            n = 1
        p = pos % n
        if op == "flip": b[p] ^= arg
        elif op == "insert": b[p:p] = arg
        elif op == "delete": del b[p:p + arg]
        else: b[p:p + (8 if arg >= 2**32 else 4)] = arg.to_bytes(8 if arg >= 2**32 else 4, "little")
    return bytes(b)


@contextlib.contextmanager
def guarded():
    "Limit the address space to the current size + EXTRA_AS and the time to EXAMPLE_TIMEOUT_S for one read."
    vm = int(next(l.split()[1] for l in open("/proc/self/status") if l.startswith("VmSize:"))) * 1024
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (vm + EXTRA_AS, hard))
    def alarm(*_): raise TimeoutError(f"a read took over {EXAMPLE_TIMEOUT_S} s")
    old = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(EXAMPLE_TIMEOUT_S)
    try: yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def fuzz(reader: str, tmp: Path, name: str, seed: bytes, ops, read, valid):
    "Write the mutated seed to tmp/name, read it; the result must satisfy `valid` or the read must raise UserError / FileNotFoundError."
    RUNS[reader] = RUNS.get(reader, 0) + 1
    p = tmp / name
    p.write_bytes(mutate(seed, ops))
    try:
        with guarded(): out = read(p)
    except (UserError, FileNotFoundError): return
    assert valid(out), f"{reader} returned invalid data for edits {ops}: {str(out)[:300]}"


# --------------------------------------------------------------------------------------------------------- seeds
def _wav_seed() -> bytes:
    import soundfile as sf
    b = io.BytesIO()
    sf.write(b, (0.1 * np.sin(np.arange(1600) / 5)).astype(np.float32), 16000, format="WAV", subtype="PCM_16")
    return b.getvalue()

def _templates_seed() -> bytes:
    rng = np.random.default_rng(0)
    return pickle.dumps({"a": rng.normal(size=(20, 3)).astype(np.float32), "b": rng.normal(size=(20, 3)).astype(np.float32)}, protocol=2)

def _ckpt_seed() -> bytes:
    import torch
    b = io.BytesIO()
    torch.save({"model": {"w": torch.ones(3, 2)}, "epoch": 1, "model_config": {"feature_dim": 8}}, b)
    return b.getvalue()

def _npz_seed(tmp: Path) -> bytes:
    from speechface.data.beat2 import write_beat2_npz
    T = 3
    p = write_beat2_npz(tmp / "seed.npz", np.zeros((T, 165)), np.zeros((T, 100)), np.zeros((T, 3)))
    return p.read_bytes()

def _textgrid_seed(tmp: Path, tier: str) -> bytes:
    from praatio import textgrid
    tg = textgrid.Textgrid()
    tg.addTier(textgrid.IntervalTier(tier, [(0.1, 0.3, "AH1"), (0.3, 0.5, "B")], 0, 1.0))
    tg.save(str(tmp / "seed.TextGrid"), format="long_textgrid", includeBlankSpaces=True)
    return (tmp / "seed.TextGrid").read_bytes()

EMOTION = ("AU1," * 24 + "AU2\n").encode() + b"\n".join(b",".join(b"0.5" for _ in range(25)) for _ in range(3)) + b"\n"
PAIRS = b",speaker_path,listener_path\n0,NoXI/001/P1/1,NoXI/001/P2/1\n1,NoXI/001/P1/2,NoXI/001/P2/2\n"
SPLIT = b"id,type\n2_scott_0_1_1,train\n2_scott_0_2_2,val\n3_solomon_0_1_1,test\n"
META = json.dumps({"fps": 30, "n_vertices": 300, "masks": "regions.pkl", "textgrids": "textgrids",
                   "split": {"train": {"subjects": ["a"], "sentences": [1, 40]},
                             "val": {"subjects": ["b"], "sentences": [21, 40]}}}).encode()


def _finite(a, ndim=None, last=None):
    return isinstance(a, np.ndarray) and a.size > 0 and np.isfinite(a).all() and (ndim is None or a.ndim == ndim) \
        and (last is None or a.shape[-1] == last)

SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


# --------------------------------------------------------------------------------------------------------- properties
@SETTINGS
@given(ops=edits)
def test_fuzz_load_wav(tmp_path, ops):
    from speechface.data.audio import load_wav
    fuzz("load_wav", tmp_path, "a.wav", WAV, ops, load_wav, lambda x: _finite(x, 1) and x.dtype == np.float32)

@SETTINGS
@given(ops=edits)
def test_fuzz_safe_load_pickle(tmp_path, ops):
    from speechface.core import safe_load_pickle
    fuzz("safe_load_pickle", tmp_path, "t.pkl", TEMPLATES, ops, safe_load_pickle, lambda x: True)

@SETTINGS
@given(ops=edits)
def test_fuzz_load_templates(tmp_path, ops):
    from speechface.data.mesh import load_templates
    fuzz("load_templates", tmp_path, "t.pkl", TEMPLATES, ops, load_templates,
         lambda x: isinstance(x, dict) and x and all(_finite(v, 2, 3) for v in x.values()))

@SETTINGS
@given(ops=edits)
def test_fuzz_load_checkpoint(tmp_path, ops):
    from speechface.core import load_checkpoint
    fuzz("load_checkpoint", tmp_path, "c.pt", CKPT, ops, load_checkpoint, lambda x: isinstance(x, dict))

@SETTINGS
@given(ops=edits)
def test_fuzz_read_split_csv(tmp_path, ops):
    from speechface.data.beat2 import read_split_csv, BEAT2_SPLITS
    fuzz("read_split_csv", tmp_path, "train_test_split.csv", SPLIT, ops, read_split_csv,
         lambda x: isinstance(x, dict) and all(t in BEAT2_SPLITS and "/" not in i and "\\" not in i and ".." not in i
                                               and i.isprintable() for i, t in x.items()))

@SETTINGS
@given(ops=edits)
def test_fuzz_read_beat2_npz(tmp_path, ops):
    from speechface.data.beat2 import read_beat2_npz
    fuzz("read_beat2_npz", tmp_path, "m.npz", NPZ, ops, read_beat2_npz,
         lambda x: _finite(x["poses"], 2, 165) and _finite(x["expressions"], 2, 100) and _finite(x["trans"], 2, 3)
                   and _finite(x["betas"], 1, 300))

@SETTINGS
@given(ops=edits)
def test_fuzz_read_pairs_csv(tmp_path, ops):
    from speechface.data.react import read_pairs_csv
    fuzz("read_pairs_csv", tmp_path, "val.csv", PAIRS, ops, read_pairs_csv,
         lambda x: x and all(not Path(s).is_absolute() and ".." not in Path(s).parts and s.isprintable() for pr in x for s in pr))

@SETTINGS
@given(ops=edits)
def test_fuzz_read_emotion_csv(tmp_path, ops):
    from speechface.data.react import read_emotion_csv
    fuzz("read_emotion_csv", tmp_path, "e.csv", EMOTION, ops, read_emotion_csv, lambda x: _finite(x, 2, 25))

@SETTINGS
@given(ops=edits)
def test_fuzz_read_3dmm_npy(tmp_path, ops):
    from speechface.data.react import read_3dmm_npy
    fuzz("read_3dmm_npy", tmp_path, "c.npy", FV, ops, read_3dmm_npy, lambda x: _finite(x, 2, 58))

@SETTINGS
@given(ops=edits)
def test_fuzz_metadata(tmp_path, ops):
    from speechface.data.dataset import resolve_spec
    def valid(s):
        return (isinstance(s.fps, (int, float)) and not isinstance(s.fps, bool) and np.isfinite(s.fps) and s.fps > 0
                and (s.n_vertices is None or (isinstance(s.n_vertices, int) and s.n_vertices > 0))
                and (s.masks is None or (isinstance(s.masks, str) and not Path(s.masks).is_absolute() and ".." not in Path(s.masks).parts))
                and isinstance(s.splits, dict))
    fuzz("metadata.json (resolve_spec)", tmp_path, "metadata.json", META, ops, lambda p: resolve_spec(p.parent), valid)

@SETTINGS
@given(ops=edits)
def test_fuzz_read_phone_tier(tmp_path, ops):
    from speechface.data.textgrid import read_phone_tier
    fuzz("read_phone_tier", tmp_path, "x.TextGrid", PHONES_TG, ops, read_phone_tier,
         lambda x: isinstance(x, list) and all(isinstance(s, float) and isinstance(e, float) and isinstance(l, str) for s, e, l in x))

@SETTINGS
@given(ops=edits)
def test_fuzz_read_word_tier(tmp_path, ops):
    from speechface.data.beat2 import read_word_tier
    fuzz("read_word_tier", tmp_path, "x.TextGrid", WORDS_TG, ops, read_word_tier,
         lambda x: isinstance(x, list) and all(isinstance(l, str) for _, _, l in x))


def test_mutate_edits_bytes():
    "The mutation operators do what they say."
    assert mutate(b"abcd", [("flip", 0, 1)]) == b"`bcd" and mutate(b"abcd", [("cut", 2, 0)]) == b"ab"
    assert mutate(b"abcd", [("insert", 1, b"XY")]) == b"aXYbcd" and mutate(b"abcd", [("delete", 1, 2)]) == b"ad"
    assert mutate(b"\0" * 8, [("field", 0, 0xFFFFFFFF)]) == b"\xff" * 4 + b"\0" * 4


@pytest.fixture(scope="module", autouse=True)
def _seeds(tmp_path_factory):
    "Build the valid seed files once; afterwards report (and with SPEECHFACE_HOSTILE_TABLE write) the examples per reader."
    global WAV, TEMPLATES, CKPT, NPZ, FV, PHONES_TG, WORDS_TG
    tmp = tmp_path_factory.mktemp("seeds")
    WAV, TEMPLATES, CKPT, NPZ = _wav_seed(), _templates_seed(), _ckpt_seed(), _npz_seed(tmp)
    b = io.BytesIO()
    np.save(b, np.zeros((4, 1, 58), np.float32))
    FV = b.getvalue()
    PHONES_TG, WORDS_TG = _textgrid_seed(tmp, "phones"), _textgrid_seed(tmp, "words")
    yield
    lines = [f"- {k}: {v} examples" for k, v in RUNS.items()]
    print("\nfuzzed readers:\n" + "\n".join(lines))
    table = os.environ.get("SPEECHFACE_HOSTILE_TABLE")
    if table: Path(table).with_suffix(".fuzz.md").write_text("Fuzzed readers (examples each):\n\n" + "\n".join(lines) + "\n")
