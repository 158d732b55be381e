"""Hostile BEAT2 data cannot delete, exhaust, hang or crash: a split csv whose id climbs out of the corpus, a cache folder
shared with other files, a motion file with a 1 GiB deflated member, a FIFO in place of a file, a non-UTF-8 or
over-long csv, terminal escapes in an id, garbage and pathological TextGrids. Each ends in one line naming the file,
and nothing outside the output and the cache changes."""
import hashlib, os, shutil, subprocess, sys, threading
from pathlib import Path

import numpy as np
import pytest

from speechface.data.beat2 import beat2_paths, write_split_csv, read_split_csv
from forkrun import run_cli

ATTACK = "2_ben_x/../../../checkpoints"      # three '..' from smplxflame_30/2_ben_x (or cache/beat2/2_ben_x) lead to its grandparent


@pytest.fixture(scope="module")
def beat2_tiny():
    "The tiny synthetic BEAT2 corpus (cached, read only: copy before changing files)."
    from speechface.data.beat2_synth import cached_beat2_corpus
    return cached_beat2_corpus("tiny")


def _tree(top: Path, skip: tuple = ()) -> dict:
    "Every folder and file under `top` (not following links), files by content hash; `skip`: top-level names left out."
    out = {}
    for dirpath, dirs, files in os.walk(top):
        rel = Path(dirpath).relative_to(top)
        if rel.parts and rel.parts[0] in skip: continue
        for d in dirs: out[(rel / d).as_posix()] = "folder"
        for f in files:
            p = Path(dirpath) / f
            out[(rel / f).as_posix()] = os.readlink(p) if p.is_symlink() else hashlib.sha256(p.read_bytes()).hexdigest()
    return {k: v for k, v in out.items() if k.split("/")[0] not in skip}


def _speechface(*args, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    "`speechface ARGS` run in `cwd` (relative paths in the arguments are read from there)."
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(Path(__file__).parents[1])}
    return run_cli(*args, cwd=cwd, env=env, timeout=timeout)


def _one_line_error(r: subprocess.CompletedProcess) -> str:
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert r.returncode in (1, 2) and len(lines) == 1 and "Traceback" not in r.stderr, (r.returncode, r.stdout[-2000:], r.stderr[-3000:])
    return lines[0]


@pytest.mark.parametrize("target", ["checkpoints", "data"])
def test_id_climbing_out_of_the_corpus_deletes_nothing(tmp_path, beat2_tiny, target):
    "A split row `2_ben_x/../../../<target>` with the empty folders and a valid recording it needs: training stops at once."
    work = tmp_path / "work"
    root = work / "data" / "beat2"
    shutil.copytree(beat2_tiny, root)
    (work / "checkpoints" / "run1").mkdir(parents=True)
    (work / "checkpoints" / "run1" / "best.pt").write_bytes(b"weights" * 100)
    (work / "data" / "other").mkdir()
    (work / "data" / "other" / "vertices.npy").write_bytes(b"a sibling dataset")
    id = ATTACK.replace("checkpoints", target)
    for key, p in beat2_paths(root, "2_ben_0_1_1").items():               # the recording the row resolves to, one level above the corpus
        (root / p.parent.name / "2_ben_x").mkdir()
        shutil.copy(p, work / "data" / f"{target}{p.suffix}")
    table = read_split_csv(root / "train_test_split.csv")
    write_split_csv(root / "train_test_split.csv", {**table, id: "train"})
    before = _tree(work)
    r = _speechface("train", "--quiet", "trainer=coefficients", "dataset=beat2", "dataset.root=data/beat2", "dataset.cache_dir=cache",
                    "dataset.part=face", "out_dir=out", "run=r", "threads=1", "trainer.epochs=1", "model.feature_dim=16", cwd=work)
    line = _one_line_error(r)
    assert "train_test_split.csv" in line and "line 10" in line and repr(id) in line, line
    assert _tree(work, skip=("out", "cache")) == before                   # nothing outside the output and the cache changed
    assert not any((work / "cache").rglob("*.npy")) if (work / "cache").exists() else True
    r = _speechface("check-data", "data/beat2", "--dataset", "beat2", cwd=work)   # check-data no longer calls it OK
    assert r.returncode != 0 and repr(id) in r.stdout + r.stderr, r.stdout + r.stderr
    assert _tree(work, skip=("out", "cache")) == before


def test_escape_in_id_is_shown_escaped(tmp_path, beat2_tiny):
    "An id holding terminal escapes: the CLI's one line shows them as text, never as control characters."
    root = Path(shutil.copytree(beat2_tiny, tmp_path / "b2"))
    write_split_csv(root / "train_test_split.csv",
                    {**read_split_csv(root / "train_test_split.csv"), "2_ben_\x1b[2J\x1b]0;owned\x07_1": "val"})
    r = _speechface("train", "--quiet", "trainer=coefficients", "dataset=beat2", f"dataset.root={root}", f"out_dir={tmp_path / 'out'}",
                    cwd=tmp_path)
    line = _one_line_error(r)
    assert r"'2_ben_\x1b[2J\x1b]0;owned\x07_1'" in line and "\x1b" not in r.stderr and "\x07" not in r.stderr, line


def _cache(root, cache, **kw):
    from speechface.data.beat2 import BEAT2Dataset
    return BEAT2Dataset(root, "train", speakers=["ada"], window=30, cache_dir=cache, **kw)


def test_cache_removes_only_its_own_stale_entries(tmp_path, beat2_tiny):
    from speechface.data.beat2 import CACHE_MARKER, cache_marker
    root = Path(shutil.copytree(beat2_tiny, tmp_path / "b2"))
    cache = tmp_path / "cache"
    (cache / "beat2" / "1_ada_0_1_1").mkdir(parents=True)                       # the old layout's folder name, and a user's files
    (cache / "beat2" / "1_ada_0_1_1" / "mine.txt").write_text("not the cache's")
    (cache / "notes").mkdir()
    (cache / "notes" / "a.txt").write_text("not the cache's")
    a = _cache(root, cache)
    assert a.cache_stats == {"hit": 0, "miss": 2}
    entry = a.cache_folder("1_ada_0_1_1")
    home = entry.parent
    assert cache_marker(entry) == {"cache": "speechface.data.beat2", "version": "3", "id": "1_ada_0_1_1", "key": entry.name}
    (home / "foreign").mkdir()
    (home / "foreign" / "x.bin").write_bytes(b"x")              # no marker
    (home / "forged").mkdir()
    (home / "forged" / CACHE_MARKER).write_text('{"cache": "speechface.data.beat2", "id": "1_ada_0_2_2"}')
    (home / "bad_marker").mkdir()
    (home / "bad_marker" / CACHE_MARKER).write_bytes(b"\xff[" * 100)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / CACHE_MARKER).write_text('{"cache": "speechface.data.beat2", "id": "1_ada_0_1_1", "key": "0"}')
    (home / "link").symlink_to(outside, target_is_directory=True)              # a link to a marked folder is not an entry
    stale = [a.cache_folder(i).name for i in a.ids]                              # the entries the next dataset makes stale
    before = _tree(tmp_path, skip=("cache",)) | {"cache/" + k: v for k, v in _tree(cache).items() if not any(s in k for s in stale)}
    b = _cache(root, cache, vocab=a.vocab[:4])
    assert b.cache_stats == {"hit": 0, "miss": 2}   # every entry goes stale
    new = b.cache_folder("1_ada_0_1_1")
    assert not entry.exists() and new.is_dir() and cache_marker(new)["key"] == new.name
    after = _tree(tmp_path, skip=("cache",)) | {"cache/" + k: v for k, v in _tree(cache).items()}
    assert all(after.get(k) == v for k, v in before.items()), [k for k, v in before.items() if after.get(k) != v]
    assert sorted(p.name for p in home.iterdir()) == sorted(["foreign", "forged", "bad_marker", "link", new.name])
    # something not made by the cache where the new entry must go is an error, not removed
    shutil.rmtree(new)
    new.mkdir()
    (new / "keep.txt").write_text("x")
    with pytest.raises(Exception, match="was not written by this cache"): _cache(root, cache, vocab=a.vocab[:4])
    assert (new / "keep.txt").read_text() == "x"


def test_stale_entry_that_cannot_be_removed_is_reported(tmp_path, beat2_tiny, monkeypatch):
    import speechface.data.beat2 as b2
    root = Path(shutil.copytree(beat2_tiny, tmp_path / "b2"))
    cache = tmp_path / "cache"
    a = _cache(root, cache)
    entry = a.cache_folder("1_ada_0_1_1")
    def refuse(path, *a, **kw): raise PermissionError(13, "Permission denied", str(path))
    monkeypatch.setattr(b2.shutil, "rmtree", refuse)
    with pytest.warns(UserWarning, match="could not remove this stale BEAT2 cache entry"):
        _cache(root, cache, vocab=a.vocab[:4])
    assert entry.is_dir()


def _zeros_member(npz: Path, name: str, shape: tuple, dtype: str = "<f4"):
    "Append a ZIP_DEFLATED .npy member of zeros to `npz`, written in 16 MiB chunks (little memory, ~4 s for 1 GiB)."
    import zipfile
    n = int(np.prod(shape)) * np.dtype(dtype).itemsize
    with zipfile.ZipFile(npz, "a", zipfile.ZIP_DEFLATED, compresslevel=1) as z, z.open(f"{name}.npy", "w", force_zip64=True) as f:
        np.lib.format.write_array_header_1_0(f, {"descr": dtype, "fortran_order": False, "shape": shape})
        for i in range(0, n, 16 << 20): f.write(bytes(min(16 << 20, n - i)))


_MEASURE = r"""
import json, resource, sys, time
from speechface.data.beat2 import read_beat2_npz
def vm(key): return next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith(key))
limit = vm("VmSize") + 512 * 2**20                        # 512 MiB of address space beyond what the imports mapped
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
rss0, t0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, time.perf_counter()
try: m = read_beat2_npz(sys.argv[1]); out = {"frames": len(m["poses"])}
except MemoryError: out = {"error": "MemoryError"}
except Exception as e: out = {"error": f"{type(e).__name__}: {e}"}
out.update(seconds=time.perf_counter() - t0, peak_rss_growth=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - rss0)
print(json.dumps(out))
"""


def _read_limited(npz: Path) -> dict:
    "read_beat2_npz(npz) in a fresh interpreter allowed 512 MiB of address space beyond its imports: frames or error, peak RSS growth."
    import json
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1]), "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-c", _MEASURE, str(npz)], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    print(npz.name, npz.stat().st_size, "bytes on disk;", out)
    return out


def test_unused_1gib_member_is_never_inflated(tmp_path, beat2_tiny):
    "A real motion file plus a member deflated from 1 GiB of zeros: read under a 512 MiB address-space allowance."
    npz = tmp_path / "bomb.npz"
    shutil.copy(beat2_paths(beat2_tiny, "1_ada_0_1_1")["motion"], npz)
    _zeros_member(npz, "junk", (2**28,))
    assert npz.stat().st_size < 2**23                                            # a few MiB on disk
    out = _read_limited(npz)
    assert "error" not in out and out["frames"] > 0, out
    assert out["peak_rss_growth"] < 128 * 2**20, out                             # inflating the member would take 1 GiB


def test_declared_frames_disagree_before_inflating(tmp_path, beat2_tiny):
    "`expressions` declaring 2^21 frames (1.6 GiB deflated to a few MiB) is refused from its header, under the same allowance."
    import zipfile
    src = beat2_paths(beat2_tiny, "1_ada_0_1_1")["motion"]
    npz = tmp_path / "lie.npz"
    with zipfile.ZipFile(src) as zi, zipfile.ZipFile(npz, "w") as zo:
        for n in zi.namelist():
            if n != "expressions.npy": zo.writestr(zi.getinfo(n), zi.read(n))
    _zeros_member(npz, "expressions", (2**21, 100), "<f8")
    out = _read_limited(npz)
    assert out.get("error", "").startswith("BEAT2DataError") and "expressions has 2097152 frames but poses has" in out["error"], out
    assert out["peak_rss_growth"] < 128 * 2**20, out


def _within(fn, seconds: float = 60):
    "Call fn() in a thread; fail if it has not returned in `seconds` (a reader blocked on a FIFO never would)."
    box = {}
    def run():
        try: box["value"] = fn()
        except BaseException as e: box["error"] = e
    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), f"still blocked after {seconds} s"
    return box


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
@pytest.mark.parametrize("kind", ["motion", "audio", "text", "csv"])
def test_fifo_in_place_of_a_file_is_refused(tmp_path, beat2_tiny, kind):
    from speechface.data.beat2 import BEAT2Dataset, BEAT2DataError
    root = Path(shutil.copytree(beat2_tiny, tmp_path / "b2"))
    p = root / "train_test_split.csv" if kind == "csv" else beat2_paths(root, "1_ada_0_1_1")[kind]
    p.unlink()
    os.mkfifo(p)
    box = _within(lambda: BEAT2Dataset(root, "train", speakers=["ada"], window=30, vocab=["", "<unk>"]))
    assert isinstance(box.get("error"), BEAT2DataError) and "FIFO" in str(box["error"]) and p.name in str(box["error"]), box
    if kind == "motion":                                                          # and through the CLI: one line, no hang
        r = _speechface("train", "trainer=coefficients", "dataset=beat2", f"dataset.root={root}", f"out_dir={tmp_path / 'out'}",
                        "dataset.on_error=raise", "dataset.cache_dir=null", cwd=tmp_path, timeout=300)
        assert "FIFO" in _one_line_error(r)
    if kind != "csv":                               # with on_error='skip' the FIFO is never opened either: the recording is left out
        box = _within(lambda: BEAT2Dataset(root, "train", speakers=["ada"], window=30, vocab=["", "<unk>"], on_error="skip"))
        ds = box.get("value")
        assert ds is not None and "FIFO" in ds.skipped.get("1_ada_0_1_1", "") and ds.ids == ["1_ada_0_2_2"], box


@pytest.mark.parametrize("content,needle", [
    (b"id,type\n2_ben_0_1_1,train\n1_j\xe9r\xf4me_0_1_1,train\n", "line 3 is not UTF-8 text (byte 0xe9 at column 4)"),
    (b"id,type\n2_ben_" + b"x" * 2**22 + b",train\n", "line 2 is longer than 1024 characters"),
    (b'id,type\n"2_ben_' + b"x\n" * 200_000 + b'",train\n', "field larger than field limit"),
    (b"id,type\n" + b"," * 1000 + b"\n", "line 2: type '' is not one of"),
    (b"id,type\n2_ben_0_1_1,train\x00\n", "line 2"),
    (b"id,type\n2_ben_\x1b[2K\r1_ada_0_1_1,train\n", "line 2 holds a carriage return"),
    (b"\xff\xfe" + "id,type\n".encode("utf-16-le"), "line 1 is not UTF-8 text"),
    (b"id,type\n2_ben_0_1_1,train\n" * (2**20), "more than the 16 MiB"),
])
def test_bad_split_csv_is_one_line(tmp_path, content, needle):
    from speechface.core import UserError
    from speechface.data.beat2 import BEAT2DataError
    assert issubclass(BEAT2DataError, UserError)
    p = tmp_path / "train_test_split.csv"
    p.write_bytes(content)
    with pytest.raises(BEAT2DataError) as e: read_split_csv(p)
    msg = str(e.value)
    assert msg.startswith(str(p)) and needle in msg and "\n" not in msg and len(msg) < 600, msg


def test_garbage_textgrids_are_one_line(tmp_path, beat2_tiny):
    "Random bytes, Latin-1, cut files, deep JSON, huge numbers and praatio's quadratic case: one line each, in one pass."
    from speechface.data.beat2 import read_word_tier, BEAT2DataError
    good = beat2_paths(beat2_tiny, "1_ada_0_1_1")["text"].read_bytes()
    head = good[:good.index(b"text =")]
    rng = np.random.default_rng(0)
    cases = {"random": rng.bytes(8192), "latin1": good.replace(b'"ooTextFile"', b'"ooTextFile\xe9"'), "cut": good[:len(good) // 3],
             "json": b"[" * 200_000, "huge number": good.replace(b"xmin = 0", b"xmin = 1e999", 1), "empty": b"",
             "quadratic for praatio (2 MB)": head + b'text = "a' * 230_000, "open brackets": b"[" * 10**6,
             "size": head.replace(b"size = ", b"size = 1e15 ", 1),
             "binary": b"ooBinaryFile\x08TextGrid" + rng.bytes(100)}
    for name, data in cases.items():
        p = tmp_path / f"{name}.TextGrid"
        p.write_bytes(data)
        with pytest.raises(BEAT2DataError) as e: read_word_tier(p)
        msg = str(e.value)
        assert msg.startswith(str(p)) and "\n" not in msg and len(msg) < 600, (name, msg)
    assert read_word_tier(beat2_paths(beat2_tiny, "1_ada_0_1_1")["text"])     # the real one still reads


def test_symlinked_file_leaving_the_corpus_is_refused(tmp_path, beat2_tiny):
    from speechface.data.beat2 import BEAT2Dataset, BEAT2DataError
    root = Path(shutil.copytree(beat2_tiny, tmp_path / "b2"))
    wav = beat2_paths(root, "1_ada_0_1_1")["audio"]
    secret = tmp_path / "secret.wav"
    shutil.move(wav, secret)
    wav.symlink_to(secret)
    with pytest.raises(BEAT2DataError, match="leads outside"): BEAT2Dataset(root, "train", speakers=["ada"], window=30)
    link = tmp_path / "link_to_corpus"
    link.symlink_to(root, target_is_directory=True)   # a link to the whole corpus is fine
    wav.unlink()
    shutil.move(secret, wav)
    assert BEAT2Dataset(link, "train", speakers=["ada"], window=30).ids == ["1_ada_0_1_1", "1_ada_0_2_2"]


def test_direct_python_callers_are_checked(tmp_path):
    from speechface.data.beat2 import BEAT2DataError, load_beat2_recording
    from speechface.data.beat2_motion import annotations
    for call in (lambda: beat2_paths(tmp_path, "/etc/passwd"), lambda: beat2_paths(tmp_path, ".."),
                 lambda: load_beat2_recording(tmp_path, "2_ben_x/../../..", ["", "<unk>"]),
                 lambda: annotations(tmp_path, "2_ben_0_1_1/../../x"), lambda: beat2_paths(tmp_path, "ben_2")):
        with pytest.raises(BEAT2DataError): call()
