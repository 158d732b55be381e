"""Hostile inputs for the `speechface` console script: each case writes files into its own folder and returns the argv.

A case folder `d` holds the damaged dataset, a sentinel tree beside it (`d/sentinel/...`: checkpoints of another run,
another dataset) and the case's output folders (`d/out` by default). The runner (`run_case`) hashes every file of `d`
outside the output folders before and after the command, runs it with an address-space limit and a timeout, and
records exit code, output and what changed. `tests/test_hostile.py` asserts the contract on the records.
"""
from __future__ import annotations
import csv, hashlib, io, json, os, shutil, stat, struct, threading, zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from forkrun import Zygote

import numpy as np

TIMEOUT_S = 60              # one run: the slowest normal case (1-epoch BEAT2 train) takes ~30 s with 2 runs on 2 CPU cores
BOMB_BYTES = 2 * 2**30      # uncompressed size of the deflated-zeros members: inflated, they pass AS_HEADROOM
MARKER = "pwned"            # code-execution payloads `touch d/pwned`


@dataclass
class Ctx:
    "What the builders need: the cached corpora (read only: copy them) and a tiny trained checkpoint."
    tiny: Path
    beat2: Path
    dyadic: Path
    ckpt: Path
    bombs: Path


@dataclass
class Case:
    name: str
    family: str
    command: str
    build: Callable[[Path, Ctx], list]      # (case folder, ctx) -> argv after `speechface`
    outputs: tuple = ("out",)                # folders of the case allowed to change
    check: Callable | None = None            # success cases: (case folder, record) -> None, asserting
    ok_rcs: tuple = (1, 2)                   # exit codes that keep the contract (0 only where ignoring the input is right)


# ---------------------------------------------------------------------------------------------------------- helpers
def tree_state(root: Path, skip: tuple = ()) -> dict:
    "relative path -> ('file', sha256) | ('link', target) | ('dir',) | ('fifo',) ... for everything under `root` but `skip`."
    out = {}
    for dirpath, dirs, files in os.walk(root, followlinks=False):
        rel_dir = Path(dirpath).relative_to(root)
        if rel_dir.parts and rel_dir.parts[0] in skip:
            dirs[:] = []
            continue
        for n in dirs + files:
            p = Path(dirpath) / n
            rel = str(rel_dir / n)
            if not rel_dir.parts and n in skip: continue
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode): out[rel] = ("link", os.readlink(p))
            elif stat.S_ISDIR(st.st_mode): out[rel] = ("dir",)
            elif stat.S_ISREG(st.st_mode):
                h = hashlib.sha256()
                with open(p, "rb") as f:
                    for chunk in iter(lambda: f.read(1 << 20), b""): h.update(chunk)
                out[rel] = ("file", h.hexdigest())
            else: out[rel] = ("special", stat.S_IFMT(st.st_mode))
    return out


def tree_diff(a: dict, b: dict) -> list[str]:
    "Paths added, removed or changed between two `tree_state`s."
    return sorted([f"+{p}" for p in b.keys() - a.keys()] + [f"-{p}" for p in a.keys() - b.keys()]
                  + [f"~{p}" for p in a.keys() & b.keys() if a[p] != b[p]])


def plant_sentinels(d: Path, ctx: Ctx):
    "Files a run must never touch: another run's checkpoints and another dataset, beside the case's data."
    s = d / "sentinel"
    (s / "checkpoints" / "run1").mkdir(parents=True)
    (s / "checkpoints" / "run1" / "best.pt").write_bytes(os.urandom(256))
    (s / "checkpoints" / "run1" / "metrics.csv").write_text("epoch,loss\n1,0.5\n")
    (s / "other_dataset" / "wav").mkdir(parents=True)
    (s / "other_dataset" / "wav" / "keep.wav").write_bytes(os.urandom(128))
    (s / "other_dataset" / "notes.txt").write_text("do not delete\n")


def copy_tiny(d: Path, ctx: Ctx, name: str = "data") -> Path:
    dst = d / name
    shutil.copytree(ctx.tiny, dst, ignore=shutil.ignore_patterns(".manifest.json"))
    return dst


def copy_beat2(d: Path, ctx: Ctx, name: str = "beat2") -> Path:
    dst = d / name
    shutil.copytree(ctx.beat2, dst, ignore=shutil.ignore_patterns(".manifest.json", "beats"))
    return dst


def copy_react(d: Path, ctx: Ctx, full: bool = False, name: str = "react") -> Path:
    "The dyadic corpus: whole (for training) or its val split only (csv, files, metadata) for check-data."
    dst = d / name
    if full:
        shutil.copytree(ctx.dyadic, dst, ignore=shutil.ignore_patterns(".manifest.json"))
        return dst
    dst.mkdir()
    for f in ("val.csv", "metadata.json", "neighbour_emotion_val.npy"): shutil.copy(ctx.dyadic / f, dst / f)
    shutil.copytree(ctx.dyadic / "val", dst / "val")
    return dst


def copy_ckpt(d: Path, ctx: Ctx) -> Path:
    dst = d / "ckpt" / "best.pt"
    dst.parent.mkdir()
    shutil.copy(ctx.ckpt, dst)
    return dst


def write_wav(path: Path, seconds: float = 1.0, sr: int = 16000) -> Path:
    import soundfile as sf
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * sr)) / sr
    sf.write(path, (0.1 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), sr, subtype="PCM_16")
    return path


def raw_wav(sr: int, data: bytes, channels: int = 1, bits: int = 16, data_size: int | None = None) -> bytes:
    "A PCM RIFF/WAVE file with any header fields."
    block = channels * bits // 8
    fmt = struct.pack("<HHIIHH", 1, channels, sr, sr * block, block, bits)
    n = len(data) if data_size is None else data_size
    return b"RIFF" + struct.pack("<I",
                                 36 + len(data)) + b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", n) + data


def flac_huge_frames(path: Path) -> Path:
    "A valid short FLAC whose STREAMINFO announces 2**36 - 1 samples."
    import soundfile as sf
    buf = io.BytesIO()
    sf.write(buf, np.zeros(1600, np.float32), 16000, format="FLAC", subtype="PCM_16")
    b = bytearray(buf.getvalue())
    assert b[:4] == b"fLaC"
    v = int.from_bytes(b[18:26], "big") | (2**36 - 1)       # sample rate(20) channels(3) bps(5) total samples(36)
    b[18:26] = v.to_bytes(8, "big")
    b[26:42] = bytes(16)   # zero MD5: "unknown"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(b))
    return path


def npy_header_only(path: Path, shape: tuple, dtype: str = "<f4", payload: bytes = b"\0" * 64) -> Path:
    "An .npy whose header declares `shape` but holds only `payload`."
    h = io.BytesIO()
    np.lib.format.write_array_header_1_0(h, {"descr": dtype, "fortran_order": False, "shape": shape})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(h.getvalue() + payload)
    return path


def set_meta(root: Path, **kw) -> None:
    meta = json.loads((root / "metadata.json").read_text())
    meta.update(kw)
    (root / "metadata.json").write_text(json.dumps(meta))


def write_csv_rows(path: Path, rows: list, encoding: str = "utf-8") -> None:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    path.write_bytes(buf.getvalue().encode(encoding, "surrogateescape"))


def first_stem(root: Path, sub: str = "vertices_npy", ext: str = ".npy") -> str:
    return sorted((root / sub).glob(f"*{ext}"))[0].stem


# -------------------------------------------------------------------------------------------------- pickle payloads
def _u(s: str) -> bytes:
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b
def _g(mod: str, name: str) -> bytes: return b"c" + mod.encode() + b"\n" + name.encode() + b"\n"
def _sg(mod: str,
        name: str) -> bytes: return b"\x8c" + bytes([len(mod)]) + mod.encode() + b"\x8c" + bytes([len(name)]) + name.encode() + b"\x93"
def in_dict(value: bytes, proto: int = 2) -> bytes:
    "A pickle of {'synth_f1': <value opcodes>}."
    return b"\x80" + bytes([proto]) + b"}" + _u("synth_f1") + value + b"s."
def touch(d: Path) -> str: return f"touch {d / MARKER}"

PICKLES = {   # name -> (d -> pickle bytes); each would `touch` the marker or exhaust memory if loaded unrestricted
    "global_os_system":    lambda d: in_dict(_g("os", "system") + _u(touch(d)) + b"\x85R"),
    "global_posix_system": lambda d: in_dict(_g("posix", "system") + _u(touch(d)) + b"\x85R"),
    "global_builtins_eval": lambda d: in_dict(_g("builtins", "eval") + _u(f"__import__('os').system({touch(d)!r})") + b"\x85R"),
    "stack_global_exec":   lambda d: in_dict(_sg("builtins", "exec") + _u(f"import os; os.system({touch(d)!r})") + b"\x85R", 4),
    "dotted_getattr":      lambda d: in_dict(_sg("builtins", "getattr") + _sg("os", "system") + b"\x86R", 4),
    "dotted_allowed_prefix": lambda d: in_dict(_sg("builtins", "dict.__class__.__subclasses__") + b")R", 4),
    "inst_os_system":      lambda d: b"(dS'synth_f1'\n(S'" + touch(d).encode() + b"'\nios\nsystem\ns.",
    "obj_os_system":       lambda d: in_dict(b"(" + _g("os", "system") + _u(touch(d)) + b"o"),
    "ext_opcode":          lambda d: in_dict(b"\x82\x01"),
    "persistent_id":       lambda d: in_dict(_u(touch(d)) + b"Q"),
    "reduce_subprocess":   lambda d: in_dict(_g("subprocess", "check_call") + b"(" + _u("sh") + _u("-c") + _u(touch(d)) + b"l\x85R"),
    "numpy_scalar_object": lambda d: in_dict(_g("numpy.core.multiarray", "scalar") + _g("numpy", "dtype") + _u("O8")
                                             + b"\x89\x88\x87R" + b"C\x08" + b"\x41" * 8 + b"\x86R"),
    "numpy_reconstruct_object": lambda d: in_dict(_g("numpy.core.multiarray", "_reconstruct") + _g("numpy", "ndarray")
                                                  + b"K\x00\x85" + b"C\x01b\x87R" + b"(K\x01K\x01\x85" + _g("numpy", "dtype")
                                                  + _u("O8") + b"\x89\x88\x87R\x89" + b"C\x08" + b"\x41" * 8 + b"tb"),
    "bytearray_1e10":      lambda d: in_dict(_g("builtins", "bytearray") + b"\x8a\x05" + (10**10).to_bytes(5, "little") + b"\x85R"),
    "bytes8_declared_huge": lambda d: in_dict(b"\x8e" + struct.pack("<Q", 2**40) + b"\0" * 16, 4),
    "long_binput_2_31":    lambda d: in_dict(b"]r" + struct.pack("<I", 2**31 - 1)),
    "build_codecs_defaults": lambda d: in_dict(_sg("_codecs", "encode") + b"N}" + _u("__defaults__") + _u("hex") + b"\x85s\x86b", 4),
    "truncated":           lambda d: in_dict(_g("numpy", "ndarray"))[:-9],
}


# ------------------------------------------------------------------------------------------------------- checkpoints
def _rewrite_zip(src: Path, dst: Path, replace: dict | None = None, extra: dict | None = None):
    "Copy a zip (a torch checkpoint, an npz) member by member; `replace` name-suffix -> bytes or ('zeros', n) deflated."
    replace, extra = replace or {}, extra or {}
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            new = next((v for k, v in replace.items() if info.filename.endswith(k)), None)
            _put(zout, info.filename, zin.read(info.filename) if new is None else new)
        for name, v in extra.items(): _put(zout, name, v)


def _put(z: zipfile.ZipFile, name: str, v):
    zi = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    if isinstance(v, tuple):                                        # ('zeros', n): n zero bytes, deflated, streamed
        zi.compress_type = zipfile.ZIP_DEFLATED
        zi._compresslevel = 1
        with z.open(zi, "w", force_zip64=True) as f:
            head, n = v[2] if len(v) > 2 else b"", v[1]
            f.write(head)
            chunk = bytes(1 << 24)
            left = n - len(head)
            while left > 0:
                f.write(chunk[:min(left, len(chunk))])
                left -= len(chunk)
    else: z.writestr(zi, v)


def pt_with_pickle(path: Path, raw: bytes) -> Path:
    "A torch zip checkpoint whose data.pkl is `raw`."
    import torch
    tmp = path.with_name(path.name + ".base")
    torch.save({"a": 1}, tmp)
    _rewrite_zip(tmp, path, {"/data.pkl": raw})
    tmp.unlink()
    return path


def pt_edit(src: Path, dst: Path, fn) -> Path:
    "Load a checkpoint, change it with `fn(ck) -> ck`, save it."
    import torch
    ck = fn(torch.load(src, weights_only=True))
    torch.save(ck, dst)
    return dst


_bomb_lock = threading.Lock()

def pt_bomb(ctx: Ctx) -> Path:
    "A real checkpoint plus a tensor whose storage member is BOMB_BYTES of deflated zeros (built once per session)."
    out = ctx.bombs / "bomb.pt"
    with _bomb_lock:
        if out.is_file(): return out
        import torch
        ck = torch.load(ctx.ckpt, weights_only=True)
        ck["extra"] = torch.zeros(54321, dtype=torch.uint8)
        base = ctx.bombs / "bomb_base.pt"
        torch.save(ck, base)
        with zipfile.ZipFile(base) as z:
            pname = next(n for n in z.namelist() if n.endswith("/data.pkl"))
            pk = z.read(pname)
            key = next(n for n in z.namelist() if "/data/" in n and z.getinfo(n).file_size == 54321)
        n = BOMB_BYTES
        big = b"\x8a\x05" + n.to_bytes(5, "little")
        old_numel = b"M" + struct.pack("<H", 54321)
        assert pk.count(old_numel) >= 1, "numel/size encoding changed"
        pk = pk.replace(old_numel, big)
        _rewrite_zip(base, out, {"/data.pkl": pk, key: ("zeros", n)})
        return out


def npz_bomb(ctx: Ctx, src: Path) -> Path:
    "A BEAT2 motion .npz plus a never-used member `pad.npy` of BOMB_BYTES deflated zeros (built once per session)."
    out = ctx.bombs / "bomb.npz"
    with _bomb_lock:
        if out.is_file(): return out
        h = io.BytesIO()
        np.lib.format.write_array_header_1_0(h, {"descr": "|u1", "fortran_order": False, "shape": (BOMB_BYTES,)})
        _rewrite_zip(src, out, extra={"pad.npy": ("zeros", BOMB_BYTES + len(h.getvalue()), h.getvalue())})
        return out


# ------------------------------------------------------------------------------------------------------ case builders
CASES: list[Case] = []
SUCCESS: list[Case] = []

def case(name, family, command, outputs=("out",), ok_rcs=(1, 2)):
    def deco(fn):
        CASES.append(Case(name, family, command, fn, outputs, ok_rcs=ok_rcs))
        return fn
    return deco

def success(name, family, command, check):
    def deco(fn):
        SUCCESS.append(Case(name, family, command, fn, ("out",), check))
        return fn
    return deco

TINY_MODEL = ["model.feature_dim=32", "model.audio.mel_dim=32", "trainer.batch_size=4", "trainer.epochs=1"]
B2_TRAIN = ["trainer=coefficients", "dataset=beat2", "model.feature_dim=32", "model.audio.mel_dim=32",
            "trainer.batch_size=4", "trainer.epochs=1",
            "dataset.on_error=raise"]   # the refusal itself; on_error=skip (the default) leaves the file out with a warning
REACT_TRAIN = ["trainer=reaction_fsq", "dataset=dyadic", "trainer.epochs=1", "trainer.batch_size=2"]

def train_tiny(d, root, *extra): return ["train", f"dataset.root={root}", f"out_dir={d / 'out'}", *TINY_MODEL, *extra, "--quiet"]
def b2_train(d, root, *extra): return ["train", *B2_TRAIN, f"dataset.root={root}", f"out_dir={d / 'out'}", *extra, "--quiet"]
def react_train(d, root, *extra): return ["train", *REACT_TRAIN, f"dataset.root={root}", f"out_dir={d / 'out'}", *extra, "--quiet"]
def animate(d, ctx, audio, *extra, out="out/o.npy"):
    return ["animate", str(audio), "--ckpt", str(copy_ckpt(d, ctx)), "--out", str(d / out), "--device", "cpu", "--quiet", *extra]


# 1. data loss / path escape ------------------------------------------------------------------------------------------
def _beat2_traversal(d, ctx, id="2_ben_x/../../../checkpoints"):
    "BEAT2 root d/beat2 whose split csv lists `id`; the traversal's files (a valid recording) lie at d/checkpoints.*."
    root = copy_beat2(d, ctx)
    src = "2_ben_0_1_1"
    for sub in ("smplxflame_30", "wave16k", "textgrid"): (root / sub / id.split("/")[0]).mkdir()
    for sub, ext in (("smplxflame_30", ".npz"), ("wave16k", ".wav"), ("textgrid", ".TextGrid")):
        landing = Path(os.path.normpath(root / sub / f"{id}{ext}"))
        landing.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(root / sub / f"{src}{ext}", landing)
    (d / "checkpoints" / "run1").mkdir(parents=True)
    (d / "checkpoints" / "run1" / "best.pt").write_bytes(os.urandom(512))
    with open(root / "train_test_split.csv", "a") as f: f.write(f"{id},train\n")
    return root

@case("beat2_id_traversal_train_cache", "path escape", "train", outputs=("out", "cache"))
def _(d, ctx):
    root = _beat2_traversal(d, ctx)          # cache/beat2/<id> = d/checkpoints: the cache refresh would rmtree its contents
    return b2_train(d, root, f"dataset.cache_dir={d / 'cache'}")

@case("beat2_id_traversal_train_nocache", "path escape", "train")
def _(d, ctx): return b2_train(d, _beat2_traversal(d, ctx))

@case("beat2_id_traversal_check", "path escape", "check-data")
def _(d, ctx): return ["check-data", str(_beat2_traversal(d, ctx))]

@case("beat2_id_dotdot_check", "path escape", "check-data")
def _(d, ctx): return ["check-data", str(_beat2_traversal(d, ctx, "2_ben_0_1_1/../2_ben_0_2_2")), "--dataset", "beat2"]

@case("beat2_id_absolute_check", "path escape", "check-data")
def _(d, ctx):
    root = copy_beat2(d, ctx)
    with open(root / "train_test_split.csv", "a") as f: f.write(f"{d / 'sentinel' / 'x'},train\n")
    return ["check-data", str(root)]

@case("beat2_id_deep_traversal_train", "path escape", "train", outputs=("out", "cache"))
def _(d, ctx):
    root = _beat2_traversal(d, ctx, "2_ben_y/../../../sentinel/checkpoints")
    return b2_train(d, root, f"dataset.cache_dir={d / 'cache'}")

def _react_rows(root, rows, name="val.csv"):
    "Rewrite a pairs csv; LIS in a row stands for a real listener of that split."
    lis = "NoXI/005_synth/P2/1" if name == "val.csv" else "NoXI/001_synth/P2/1"
    write_csv_rows(root / name, [["", "speaker_path", "listener_path"], *[[c if c != "LIS" else lis for c in r] for r in rows]])

def react_file(root, modality="Emotion", ext=".csv"):
    "The first val file of a modality."
    return sorted((root / "val" / modality).rglob(f"*{ext}"))[0]

@case("react_csv_dotdot_check", "path escape", "check-data")
def _(d, ctx):
    root = copy_react(d, ctx)
    _react_rows(root, [[0, "../../sentinel/other_dataset/x", "LIS"]])
    return ["check-data", str(root), "--dataset", "react"]

@case("react_csv_inner_dotdot_check", "path escape", "check-data")
def _(d, ctx):
    root = copy_react(d, ctx)
    _react_rows(root, [[0, "NoXI/../../../../sentinel/x", "LIS"]])
    return ["check-data", str(root), "--dataset", "react"]

@case("react_csv_absolute_check", "path escape", "check-data")
def _(d, ctx):
    root = copy_react(d, ctx)
    _react_rows(root, [[0, str(d / "sentinel" / "x"), "LIS"]])
    return ["check-data", str(root), "--dataset", "react"]

@case("react_csv_dotdot_train", "path escape", "train")
def _(d, ctx):
    root = copy_react(d, ctx, full=True)
    _react_rows(root, [[0, "NoXI/../../x", "LIS"]], "train.csv")
    return react_train(d, root)

def _outside_regions(d, root):
    (d / "sentinel" / "elsewhere").mkdir()
    shutil.copy(root / "regions.pkl", d / "sentinel" / "elsewhere" / "regions.pkl")
    return d / "sentinel" / "elsewhere" / "regions.pkl"

@case("meta_masks_dotdot_check", "path escape", "check-data")
def _(d, ctx):
    root = copy_tiny(d, ctx)
    _outside_regions(d, root)
    (root / "regions.pkl").unlink()
    set_meta(root, masks="../sentinel/elsewhere/regions.pkl")
    return ["check-data", str(root)]

@case("meta_masks_absolute_check", "path escape", "check-data")
def _(d, ctx):
    root = copy_tiny(d, ctx)
    p = _outside_regions(d, root)
    (root / "regions.pkl").unlink()
    set_meta(root, masks=str(p))
    return ["check-data", str(root)]

@case("meta_masks_dotdot_lipreader", "path escape", "lipreader")
def _(d, ctx):
    root = copy_tiny(d, ctx)
    _outside_regions(d, root)
    (root / "regions.pkl").unlink()
    set_meta(root, masks="../sentinel/elsewhere/regions.pkl")
    return ["lipreader", str(root), "--out", str(d / "out" / "lr.pt"), "--epochs", "1", "--quiet"]

@case("meta_textgrids_dotdot_check", "path escape", "check-data")
def _(d, ctx):
    root = copy_tiny(d, ctx)
    shutil.move(root / "textgrids", d / "sentinel" / "tg")
    set_meta(root, textgrids="../sentinel/tg")
    return ["check-data", str(root)]

@case("meta_textgrids_absolute_train", "path escape", "train")
def _(d, ctx):
    root = copy_tiny(d, ctx)
    shutil.move(root / "textgrids", d / "sentinel" / "tg")
    set_meta(root, textgrids=str(d / "sentinel" / "tg"))
    return train_tiny(d, root, "trainer.phone_weight=1.0")

@case("symlink_npy_outside_check", "path escape", "check-data")
def _(d, ctx):
    root = copy_tiny(d, ctx)
    f = root / "vertices_npy" / f"{first_stem(root)}.npy"
    shutil.move(f, d / "sentinel" / "outside.npy")
    f.symlink_to(d / "sentinel" / "outside.npy")
    return ["check-data", str(root)]

@case("symlink_wav_dir_outside_baselines", "path escape", "baselines")
def _(d, ctx):
    root = copy_tiny(d, ctx)
    shutil.move(root / "wav", d / "sentinel" / "wav")
    (root / "wav").symlink_to(d / "sentinel" / "wav")
    return ["baselines", str(root)]

@case("symlink_templates_devzero_check", "path escape", "check-data")
def _(d, ctx):
    root = copy_tiny(d, ctx)
    (root / "templates.pkl").unlink()
    (root / "templates.pkl").symlink_to("/dev/zero")
    return ["check-data", str(root)]

@case("train_run_dotdot", "path escape", "train")
def _(d, ctx): return train_tiny(d, copy_tiny(d, ctx), "run=../../x")

@case("train_run_into_sentinel", "path escape", "train")
def _(d, ctx): return train_tiny(d, copy_tiny(d, ctx), "run=../sentinel/checkpoints/run1")

@case("test_run_into_sentinel", "path escape", "test")
def _(d, ctx):
    root = copy_tiny(d, ctx)
    shutil.copy(ctx.ckpt, d / "sentinel" / "checkpoints" / "run1" / "best.pt")
    return ["test", f"dataset.root={root}", f"out_dir={d / 'out'}", "run=../sentinel/checkpoints/run1", "--quiet"]


# 2. memory from tiny files -------------------------------------------------------------------------------------------
def _templates(d, ctx, payload: bytes):
    root = copy_tiny(d, ctx)
    (root / "templates.pkl").write_bytes(payload)
    return root

for _cmd in ("check-data", "train"):
    def _mk(cmd):
        @case(f"templates_bytearray_1e10_{cmd}", "memory", cmd)
        def _(d, ctx):
            root = _templates(d, ctx, PICKLES["bytearray_1e10"](d))
            return {"check-data": ["check-data", str(root)], "train": train_tiny(d, root), "baselines": ["baselines", str(root)]}[cmd]
    _mk(_cmd)

@case("templates_bytearray_1e10_animate", "memory", "animate")
def _(d, ctx):
    (d / "t.pkl").write_bytes(PICKLES["bytearray_1e10"](d))
    return animate(d, ctx, write_wav(d / "a.wav"), "--templates", str(d / "t.pkl"))

@case("templates_bytes8_huge_check", "memory", "check-data")
def _(d, ctx): return ["check-data", str(_templates(d, ctx, PICKLES["bytes8_declared_huge"](d)))]

@case("templates_long_binput_check", "memory", "check-data")
def _(d, ctx): return ["check-data", str(_templates(d, ctx, PICKLES["long_binput_2_31"](d)))]

@case("regions_long_binput_lipreader", "memory", "lipreader")
def _(d, ctx):
    root = copy_tiny(d, ctx)
    (root / "regions.pkl").write_bytes(PICKLES["long_binput_2_31"](d))
    return ["lipreader", str(root), "--out", str(d / "out" / "lr.pt"), "--epochs", "1", "--quiet"]

@case("npy_header_huge_check", "memory", "check-data")
def _(d, ctx):
    root = copy_tiny(d, ctx)
    npy_header_only(root / "vertices_npy" / f"{first_stem(root)}.npy", (2**34, 900))
    return ["check-data", str(root)]

@case("npy_header_huge_train", "memory", "train")
def _(d, ctx):
    root = copy_tiny(d, ctx)
    npy_header_only(root / "vertices_npy" / "synth_f1_sentence01.npy", (2**34, 900))
    return train_tiny(d, root)

def _results(d, ctx):
    "A results folder of the tiny corpus' test split: GT copied in as predictions (synth_m6/m7, every condition)."
    root = copy_tiny(d, ctx)
    res = d / "out" / "results"
    res.mkdir(parents=True)
    subjects = ["synth_f1", "synth_m1", "synth_f2", "synth_m2", "synth_f3", "synth_m3", "synth_f4", "synth_m4", "mean"]
    for npy in sorted((root / "vertices_npy").glob("synth_m[67]_*.npy")):
        for c in subjects: shutil.copy(npy, res / f"{npy.stem}_condition_{c}.npy")
    return root, res

@case("evaluate_pred_header_huge", "memory", "evaluate")
def _(d, ctx):
    root, res = _results(d, ctx)
    p = sorted(res.glob("*.npy"))[0]
    npy_header_only(p, (2**34, 900))
    return ["evaluate", str(res), "--data", str(root)]

@case("npz_member_bomb_check", "memory", "check-data", ok_rcs=(0, 1, 2))   # an unused member may be ignored, not inflated
def _(d, ctx):
    root = copy_beat2(d, ctx)
    f = root / "smplxflame_30" / "1_ada_0_1_1.npz"
    shutil.copy(npz_bomb(ctx, f), f)
    return ["check-data", str(root)]

@case("npz_member_bomb_train", "memory", "train", outputs=("out", "cache"), ok_rcs=(0, 1, 2))
def _(d, ctx):
    root = copy_beat2(d, ctx)
    f = root / "smplxflame_30" / "1_ada_0_1_1.npz"
    shutil.copy(npz_bomb(ctx, f), f)
    return b2_train(d, root, f"dataset.cache_dir={d / 'cache'}")

@case("npz_member_header_huge_check", "memory", "check-data", ok_rcs=(0, 1, 2))
def _(d, ctx):
    root = copy_beat2(d, ctx)
    f = root / "smplxflame_30" / "1_ada_0_2_2.npz"
    h = io.BytesIO()
    np.lib.format.write_array_header_1_0(h, {"descr": "<f8", "fortran_order": False, "shape": (2**37,)})
    _rewrite_zip(f, d / "x.npz", extra={"pad.npy": h.getvalue() + bytes(64)})
    shutil.move(d / "x.npz", f)
    return ["check-data", str(root)]

@case("wav_1hz_animate", "memory", "animate")
def _(d, ctx):
    (d / "a.wav").write_bytes(raw_wav(1, bytes(4000)))
    return animate(d, ctx, d / "a.wav")

@case("wav_1hz_train_beat2", "memory", "train", outputs=("out", "cache"))
def _(d, ctx):
    root = copy_beat2(d, ctx)
    (root / "wave16k" / "1_ada_0_1_1.wav").write_bytes(raw_wav(1, bytes(4000)))
    return b2_train(d, root)

@case("flac_2_36_frames_animate", "memory", "animate")
def _(d, ctx): return animate(d, ctx, flac_huge_frames(d / "a.flac"))

@case("flac_2_36_frames_check", "memory", "check-data")
def _(d, ctx):
    root = copy_tiny(d, ctx)
    flac_huge_frames(root / "wav" / f"{first_stem(root)}.wav")
    return ["check-data", str(root)]

@case("flac_2_36_frames_train_beat2", "memory", "train", outputs=("out", "cache"))
def _(d, ctx):
    root = copy_beat2(d, ctx)
    flac_huge_frames(root / "wave16k" / "1_ada_0_1_1.wav")
    return b2_train(d, root)

# streaming writers leave the size unset: valid, if read without a 4 GiB allocation
@case("wav_data_size_ffffffff_animate", "memory", "animate", ok_rcs=(0, 1, 2))
def _(d, ctx):
    (d / "a.wav").write_bytes(raw_wav(16000, bytes(3200), data_size=0xFFFFFFFF))
    return animate(d, ctx, d / "a.wav")

@case("pt_deflated_tensor_animate", "memory", "animate")
def _(d, ctx):
    ck = copy_ckpt(d, ctx)
    shutil.copy(pt_bomb(ctx), ck)
    return ["animate", str(write_wav(d / "a.wav")), "--ckpt", str(ck), "--out", str(d / "out" / "o.npy"), "--device", "cpu", "--quiet"]

@case("pt_deflated_tensor_test", "memory", "test")
def _(d, ctx):
    root = copy_tiny(d, ctx)
    ck = d / "ck.pt"
    shutil.copy(pt_bomb(ctx), ck)
    return ["test", f"dataset.root={root}", f"out_dir={d / 'out'}", "--ckpt", str(ck), "--quiet"]

def _huge_model(ck):
    ck["model_config"].update(feature_dim=2**16, n_layers=4096, ff_mult=64)
    return ck

@case("ckpt_huge_model_config_animate", "memory", "animate")
def _(d, ctx):
    ck = pt_edit(ctx.ckpt, d / "huge.pt", _huge_model)
    return ["animate", str(write_wav(d / "a.wav")), "--ckpt", str(ck), "--out", str(d / "out" / "o.npy"), "--device", "cpu", "--quiet"]

@case("ckpt_huge_motion_dim_test", "memory", "test")
def _(d, ctx):
    root = copy_tiny(d, ctx)
    ck = pt_edit(ctx.ckpt, d / "huge.pt", lambda c: {**c, "model_config": {**c["model_config"], "motion_dim": 3 * 10**9}})
    return ["test", f"dataset.root={root}", f"out_dir={d / 'out'}", "--ckpt", str(ck), "--quiet"]


# 3. hangs ------------------------------------------------------------------------------------------------------------
def _fifo(p: Path):
    p.unlink(missing_ok=True)
    os.mkfifo(p)
    return p

@case("fifo_npy_check", "hang", "check-data")
def _(d, ctx):
    root = copy_tiny(d, ctx)
    _fifo(root / "vertices_npy" / f"{first_stem(root)}.npy")
    return ["check-data", str(root)]

@case("fifo_npy_train", "hang", "train")
def _(d, ctx):
    root = copy_tiny(d, ctx)
    _fifo(root / "vertices_npy" / "synth_f1_sentence01.npy")
    return train_tiny(d, root)

@case("fifo_npy_baselines", "hang", "baselines")
def _(d, ctx):
    root = copy_tiny(d, ctx)
    _fifo(root / "vertices_npy" / "synth_m6_sentence21.npy")
    return ["baselines", str(root)]

@case("fifo_pred_evaluate", "hang", "evaluate", ok_rcs=(0, 1, 2))   # skipping the FIFO as a missing prediction is fine; blocking is not
def _(d, ctx):
    root, res = _results(d, ctx)
    _fifo(sorted(res.glob("*.npy"))[0])
    return ["evaluate", str(res), "--data", str(root)]

@case("fifo_wav_animate", "hang", "animate")
def _(d, ctx): return animate(d, ctx, _fifo(d / "a.wav"))

@case("fifo_wav_in_folder_animate", "hang", "animate")
def _(d, ctx):
    write_wav(d / "in" / "a.wav")
    _fifo(d / "in" / "b.wav")
    return animate(d, ctx, d / "in", out="out/many")

@case("fifo_wav_like_reference_animate", "hang", "animate")
def _(d, ctx): return animate(d, ctx, _fifo(d / "a.wav"), "--like-reference")

@case("fifo_templates_check", "hang", "check-data")
def _(d, ctx):
    root = copy_tiny(d, ctx)
    _fifo(root / "templates.pkl")
    return ["check-data", str(root)]

@case("fifo_templates_animate", "hang", "animate")
def _(d, ctx): return animate(d, ctx, write_wav(d / "a.wav"), "--templates", str(_fifo(d / "t.pkl")))

@case("fifo_textgrid_check", "hang", "check-data")
def _(d, ctx):
    root = copy_tiny(d, ctx)
    _fifo(sorted((root / "textgrids").glob("*.TextGrid"))[0])
    return ["check-data", str(root)]

@case("fifo_metadata_train", "hang", "train")
def _(d, ctx):
    root = copy_tiny(d, ctx)
    _fifo(root / "metadata.json")
    return train_tiny(d, root)

@case("fifo_beat2_split_check", "hang", "check-data")
def _(d, ctx):
    root = copy_beat2(d, ctx)
    _fifo(root / "train_test_split.csv")
    return ["check-data", str(root), "--dataset", "beat2"]

@case("fifo_react_emotion_check", "hang", "check-data")
def _(d, ctx):
    root = copy_react(d, ctx)
    _fifo(react_file(root))
    return ["check-data", str(root), "--dataset", "react"]

@case("fifo_faces_animate", "hang", "animate")
def _(d, ctx): return animate(d, ctx, write_wav(d / "a.wav"), "--faces", str(_fifo(d / "f.npy")), out="out/seq.obj")


# 4. tracebacks -------------------------------------------------------------------------------------------------------
def _beat2_csv(d, ctx, rows, encoding="utf-8"):
    root = copy_beat2(d, ctx)
    write_csv_rows(root / "train_test_split.csv", [["id", "type"], *rows], encoding)
    return root

LATIN = "2_ben_0_1_1\udce9"        # a lone 0xE9 byte (surrogateescape): not UTF-8
LONG = "2_ben_" + "x" * 200_000     # over csv's 131072-character field limit

@case("beat2_csv_non_utf8_check", "traceback", "check-data")
def _(d, ctx): return ["check-data", str(_beat2_csv(d, ctx, [["1_ada_0_1_1", "train"], [LATIN, "train"]])), "--dataset", "beat2"]

@case("beat2_csv_non_utf8_train", "traceback", "train")
def _(d, ctx): return b2_train(d, _beat2_csv(d, ctx, [["1_ada_0_1_1", "train"], [LATIN, "val"]]))

@case("beat2_csv_long_field_check", "traceback", "check-data")
def _(d, ctx): return ["check-data", str(_beat2_csv(d, ctx, [[LONG, "train"]])), "--dataset", "beat2"]

@case("beat2_csv_long_field_train", "traceback", "train")
def _(d, ctx): return b2_train(d, _beat2_csv(d, ctx, [["1_ada_0_1_1", "train"], [LONG, "train"]]))

@case("beat2_csv_nul_byte_check", "traceback", "check-data")
def _(d, ctx):
    root = copy_beat2(d, ctx)
    (root / "train_test_split.csv").write_bytes(b"id,type\n1_ada_0_1_1\x00,train\n")
    return ["check-data", str(root), "--dataset", "beat2"]

@case("react_csv_non_utf8_check", "traceback", "check-data")
def _(d, ctx):
    root = copy_react(d, ctx)
    (root / "val.csv").write_bytes(b",speaker_path,listener_path\n0,NoXI/005_synth/P1/1\xe9,NoXI/005_synth/P2/1\n")
    return ["check-data", str(root), "--dataset", "react"]

@case("react_csv_long_field_check", "traceback", "check-data")
def _(d, ctx):
    root = copy_react(d, ctx)
    _react_rows(root, [[0, "NoXI/" + "x" * 200_000, "LIS"]])
    return ["check-data", str(root), "--dataset", "react"]

@case("react_csv_long_field_train", "traceback", "train")
def _(d, ctx):
    root = copy_react(d, ctx, full=True)
    _react_rows(root, [[0, "NoXI/" + "x" * 200_000, "LIS"]], "train.csv")
    return react_train(d, root)

@case("react_emotion_non_utf8_check", "traceback", "check-data")
def _(d, ctx):
    root = copy_react(d, ctx)
    p = react_file(root)
    p.write_bytes(b"\xff\xfe" + p.read_bytes()[2:])
    return ["check-data", str(root), "--dataset", "react"]

def _meta_case(name, cmd, edit):
    @case(name, "traceback", cmd)
    def _(d, ctx):
        root = copy_tiny(d, ctx)
        edit(root)
        return {"check-data": lambda: ["check-data", str(root)], "train": lambda: train_tiny(d, root),
                "baselines": lambda: ["baselines", str(root)],
                "lipreader": lambda: ["lipreader", str(root), "--out", str(d / "out" / "lr.pt"), "--epochs", "1", "--quiet"]}[cmd]()

_meta_case("meta_fps_0_check", "check-data", lambda r: set_meta(r, fps=0))
_meta_case("meta_fps_0_train", "train", lambda r: set_meta(r, fps=0))
_meta_case("meta_fps_negative_baselines", "baselines", lambda r: set_meta(r, fps=-30))
_meta_case("meta_n_vertices_str_check", "check-data", lambda r: set_meta(r, n_vertices="300"))
_meta_case("meta_not_json_baselines", "baselines", lambda r: (r / "metadata.json").write_text("{not json"))
_meta_case("meta_list_check", "check-data", lambda r: (r / "metadata.json").write_text("[1, 2, 3]"))
_meta_case("meta_list_lipreader", "lipreader", lambda r: (r / "metadata.json").write_text("[1, 2, 3]"))
_meta_case("meta_no_split_baselines", "baselines", lambda r: set_meta(r, split=None))
_meta_case("meta_non_utf8_check", "check-data", lambda r: (r / "metadata.json").write_bytes(b'{"fps": 30, "x": "\xff"}'))
_meta_case("meta_masks_not_str_check", "check-data", lambda r: set_meta(r, masks=12))
_meta_case("meta_sentences_bad_train", "train", lambda r: set_meta(r, split={"train": {"subjects": ["synth_f1"], "sentences": 5},
                                                                        "val": {"subjects": ["synth_f5"], "sentences": [21, 40]}}))

@case("templates_truncated_animate", "traceback", "animate")
def _(d, ctx):
    (d / "t.pkl").write_bytes((ctx.tiny / "templates.pkl").read_bytes()[:100])
    return animate(d, ctx, write_wav(d / "a.wav"), "--templates", str(d / "t.pkl"))

@case("templates_truncated_check", "traceback", "check-data")
def _(d, ctx):
    root = copy_tiny(d, ctx)
    (root / "templates.pkl").write_bytes((root / "templates.pkl").read_bytes()[:100])
    return ["check-data", str(root)]

@case("regions_truncated_evaluate", "traceback", "evaluate")
def _(d, ctx):
    root, res = _results(d, ctx)
    (root / "regions.pkl").write_bytes((root / "regions.pkl").read_bytes()[:50])
    return ["evaluate", str(res), "--data", str(root)]

@case("regions_list_lipreader", "traceback", "lipreader")
def _(d, ctx):
    import pickle
    root = copy_tiny(d, ctx)
    (root / "regions.pkl").write_bytes(pickle.dumps([1, 2, 3]))
    return ["lipreader", str(root), "--out", str(d / "out" / "lr.pt"), "--epochs", "1", "--quiet"]

@case("ckpt_list_animate", "traceback", "animate")
def _(d, ctx):
    import torch
    torch.save([1, 2, 3], d / "l.pt")
    return ["animate", str(write_wav(d / "a.wav")), "--ckpt", str(d / "l.pt"), "--out", str(d / "out" / "o.npy"), "--device", "cpu"]

@case("ckpt_tensor_test", "traceback", "test")
def _(d, ctx):
    import torch
    root = copy_tiny(d, ctx)
    torch.save(torch.zeros(3), d / "t.pt")
    return ["test", f"dataset.root={root}", f"out_dir={d / 'out'}", "--ckpt", str(d / "t.pt"), "--quiet"]

@case("ckpt_no_model_config_animate", "traceback", "animate")
def _(d, ctx):
    ck = pt_edit(ctx.ckpt, d / "n.pt", lambda c: {k: v for k, v in c.items() if k != "model_config"})
    return ["animate", str(write_wav(d / "a.wav")), "--ckpt", str(ck), "--out", str(d / "out" / "o.npy"), "--device", "cpu"]

@case("ckpt_no_model_config_test", "traceback", "test")
def _(d, ctx):
    root = copy_tiny(d, ctx)
    ck = pt_edit(ctx.ckpt, d / "n.pt", lambda c: {k: v for k, v in c.items() if k != "model_config"})
    return ["test", f"dataset.root={root}", f"out_dir={d / 'out'}", "--ckpt", str(ck), "--quiet"]

@case("ckpt_model_config_str_animate", "traceback", "animate")
def _(d, ctx):
    ck = pt_edit(ctx.ckpt, d / "n.pt", lambda c: {**c, "model_config": "big"})
    return ["animate", str(write_wav(d / "a.wav")), "--ckpt", str(ck), "--out", str(d / "out" / "o.npy"), "--device", "cpu"]

@case("ckpt_templates_wrong_shape_animate", "traceback", "animate")
def _(d, ctx):
    import torch
    ck = pt_edit(ctx.ckpt, d / "n.pt", lambda c: {**c, "templates": {k: torch.zeros(7) for k in c["templates"]}})
    return ["animate", str(write_wav(d / "a.wav")), "--ckpt", str(ck), "--out", str(d / "out" / "o.npy"), "--device", "cpu"]


@case("ckpt_garbage_lip_reader_evaluate", "traceback", "evaluate")
def _(d, ctx):
    root, res = _results(d, ctx)
    (d / "lr.pt").write_bytes(b"not a checkpoint at all" * 10)
    return ["evaluate", str(res), "--data", str(root), "--lip-reader", str(d / "lr.pt")]

@case("ckpt_actor_as_lip_reader_evaluate", "traceback", "evaluate")
def _(d, ctx):
    root, res = _results(d, ctx)
    return ["evaluate", str(res), "--data", str(root), "--lip-reader", str(copy_ckpt(d, ctx))]

@case("ckpt_actor_as_sync_expert_evaluate", "traceback", "evaluate")
def _(d, ctx):
    root, res = _results(d, ctx)
    return ["evaluate", str(res), "--data", str(root), "--eval-expert", str(copy_ckpt(d, ctx))]

@case("evaluate_split_nope", "traceback", "evaluate")
def _(d, ctx):
    root, res = _results(d, ctx)
    return ["evaluate", str(res), "--data", str(root), "--split", "nope"]

@case("evaluate_conditions_nope", "traceback", "evaluate")
def _(d, ctx):
    root, res = _results(d, ctx)
    return ["evaluate", str(res), "--data", str(root), "--conditions", "nope"]

@case("evaluate_pred_wrong_shape", "traceback", "evaluate")
def _(d, ctx):
    root, res = _results(d, ctx)
    for p in sorted(res.glob("*.npy"))[:3]: np.save(p, np.zeros((4, 7), np.float32))
    return ["evaluate", str(res), "--data", str(root)]

@case("evaluate_pred_text_file", "traceback", "evaluate")
def _(d, ctx):
    root, res = _results(d, ctx)
    sorted(res.glob("*.npy"))[0].write_text("hello")
    return ["evaluate", str(res), "--data", str(root)]

@case("evaluate_results_is_file", "traceback", "evaluate")
def _(d, ctx):
    root = copy_tiny(d, ctx)
    (d / "out").mkdir()
    (d / "out" / "r.txt").write_text("x")
    return ["evaluate", str(d / "out" / "r.txt"), "--data", str(root)]

@case("test_split_nope", "traceback", "test")
def _(d, ctx):
    root = copy_tiny(d, ctx)
    return ["test", f"dataset.root={root}", f"out_dir={d / 'out'}", "--ckpt", str(copy_ckpt(d, ctx)), "--split", "nope", "--quiet"]

@case("baselines_split_nope", "traceback", "baselines")
def _(d, ctx): return ["baselines", str(copy_tiny(d, ctx)), "--splits", "nope"]

@case("faces_text_file_animate", "traceback", "animate")
def _(d, ctx):
    (d / "f.npy").write_text("not an array")
    return animate(d, ctx, write_wav(d / "a.wav"), "--faces", str(d / "f.npy"), out="out/seq.obj")

@case("faces_wrong_shape_animate", "traceback", "animate")
def _(d, ctx):
    np.save(d / "f.npy", np.arange(5.0))
    return animate(d, ctx, write_wav(d / "a.wav"), "--faces", str(d / "f.npy"), out="out/seq.obj")

@case("faces_out_of_range_animate", "traceback", "animate")
def _(d, ctx):
    np.save(d / "f.npy", np.array([[0, 1, 99999]]))
    return animate(d, ctx, write_wav(d / "a.wav"), "--faces", str(d / "f.npy"), out="out/seq.obj")

@case("faces_pickled_npy_animate", "traceback", "animate")
def _(d, ctx):
    np.save(d / "f.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    return animate(d, ctx, write_wav(d / "a.wav"), "--faces", str(d / "f.npy"), out="out/seq.obj")

@case("audio_10ms_animate", "traceback", "animate")
def _(d, ctx): return animate(d, ctx, write_wav(d / "a.wav", 0.01))


@case("audio_10ms_like_reference_animate", "traceback", "animate")
def _(d, ctx): return animate(d, ctx, write_wav(d / "a.wav", 0.01), "--like-reference")

@case("audio_garbage_like_reference_animate", "traceback", "animate")
def _(d, ctx):
    (d / "a.wav").write_bytes(b"definitely not audio" * 50)
    return animate(d, ctx, d / "a.wav", "--like-reference")

@case("out_obj_stem_is_file_animate", "traceback", "animate")
def _(d, ctx):
    (d / "out").mkdir()
    (d / "out" / "x").write_text("an existing file named like the frame folder")
    return animate(d, ctx, write_wav(d / "a.wav"), out="out/x.obj")

@case("out_unsupported_suffix_animate", "traceback", "animate")
def _(d, ctx): return animate(d, ctx, write_wav(d / "a.wav"), out="out/x.exe")

@case("textgrid_garbage_check", "traceback", "check-data")
def _(d, ctx):
    root = copy_tiny(d, ctx)
    sorted((root / "textgrids").glob("*.TextGrid"))[0].write_bytes(b"File type = \"ooTextFile\"\n\x00\xff garbage")
    return ["check-data", str(root)]

@case("textgrid_garbage_train_phones", "traceback", "train")
def _(d, ctx):
    root = copy_tiny(d, ctx)
    for p in (root / "textgrids").glob("*.TextGrid"):
        p.write_text('File type = "ooTextFile"\nObject class = "TextGrid"\nxmin = 0\nxmax = banana\n')
    return train_tiny(d, root, "trainer.phone_weight=1.0")

@case("textgrid_garbage_beat2_train", "traceback", "train")
def _(d, ctx):
    root = copy_beat2(d, ctx)
    (root / "textgrid" / "1_ada_0_1_1.TextGrid").write_bytes(b"\xff\xfe\x00garbage")
    return b2_train(d, root)

@case("textgrid_garbage_evaluate_perceptual", "traceback", "evaluate")
def _(d, ctx):
    root, res = _results(d, ctx)
    for p in (root / "textgrids").glob("synth_m[67]*.TextGrid"): p.write_text("garbage")
    return ["evaluate", str(res), "--data", str(root), "--perceptual"]

@case("wav_not_audio_check", "traceback", "check-data")
def _(d, ctx):
    root = copy_tiny(d, ctx)
    (root / "wav" / f"{first_stem(root)}.wav").write_text("RIFF but not really")
    return ["check-data", str(root)]

@case("wav_not_audio_beat2_train", "traceback", "train")
def _(d, ctx):
    root = copy_beat2(d, ctx)
    (root / "wave16k" / "1_ada_0_1_1.wav").write_text("not audio")
    return b2_train(d, root)


def _empty(name, cmd, rel):
    @case(f"empty_{name}", "traceback", {"beat2": "check-data", "react": "check-data", "beat2-train": "train"}.get(cmd, cmd))
    def _(d, ctx):
        if cmd == "animate":
            if rel == "audio":
                (d / "a.wav").write_bytes(b"")
                return animate(d, ctx, d / "a.wav")
            if rel == "ckpt":
                (d / "e.pt").write_bytes(b"")
                return ["animate", str(write_wav(d / "a.wav")), "--ckpt", str(d / "e.pt"), "--out", str(d / "out" / "o.npy")]
            (d / "e.npy").write_bytes(b"")
            return animate(d, ctx, write_wav(d / "a.wav"), "--faces", str(d / "e.npy"), out="out/s.obj")
        if cmd in ("beat2", "beat2-train"):
            root = copy_beat2(d, ctx)
            p = root / rel.format(id="1_ada_0_1_1")
            p.write_bytes(b"")
            return ["check-data", str(root), "--dataset", "beat2"] if cmd == "beat2" else b2_train(d, root)
        if cmd == "react":
            root = copy_react(d, ctx)
            (react_file(root, *rel) if isinstance(rel, tuple) else root / rel).write_bytes(b"")
            return ["check-data", str(root), "--dataset", "react"]
        root = copy_tiny(d, ctx)
        p = root / rel.format(stem=first_stem(root))
        p.write_bytes(b"")
        return ["check-data", str(root)] if cmd == "check-data" else ["baselines", str(root)] if cmd == "baselines" else train_tiny(d, root)

_empty("templates_check", "check-data", "templates.pkl")
_empty("regions_check", "check-data", "regions.pkl")
_empty("npy_check", "check-data", "vertices_npy/{stem}.npy")
_empty("wav_check", "check-data", "wav/{stem}.wav")
_empty("textgrid_check", "check-data", "textgrids/{stem}.TextGrid")
_empty("metadata_baselines", "baselines", "metadata.json")
_empty("audio_animate", "animate", "audio")
_empty("ckpt_animate", "animate", "ckpt")
_empty("faces_animate", "animate", "faces")
_empty("beat2_split_csv", "beat2", "train_test_split.csv")
_empty("beat2_npz", "beat2", "smplxflame_30/{id}.npz")
_empty("beat2_textgrid", "beat2", "textgrid/{id}.TextGrid")
_empty("beat2_wav_train", "beat2-train", "wave16k/{id}.wav")
_empty("react_pairs_csv", "react", "val.csv")
_empty("react_emotion_csv", "react", ("Emotion", ".csv"))
_empty("react_3dmm_npy", "react", ("3D_FV_files", ".npy"))


# 5. silent overwrite / escape ----------------------------------------------------------------------------------------
@case("synth_over_existing_dataset", "overwrite", "synth")
def _(d, ctx): return ["synth", "--preset", "tiny", "--out", str(d / "sentinel" / "other_dataset"), "--quiet", "--workers", "1"]

@case("synth_over_existing_corpus", "overwrite", "synth")
def _(d, ctx): return ["synth", "--preset", "beat2-tiny", "--out", str(copy_tiny(d, ctx)), "--quiet", "--workers", "1"]

@case("synth_out_is_file", "overwrite", "synth")
def _(d, ctx): return ["synth", "--preset", "tiny", "--out", str(d / "sentinel" / "other_dataset" / "notes.txt"), "--quiet"]

@case("lipreader_out_is_dataset_dir", "overwrite", "lipreader")
def _(d, ctx): return ["lipreader", str(copy_tiny(d, ctx)), "--out", str(d / "sentinel" / "other_dataset"), "--epochs", "1", "--quiet"]


# 6. smaller ----------------------------------------------------------------------------------------------------------
@case("templates_build_codecs_defaults_check", "smaller", "check-data")
def _(d, ctx): return ["check-data", str(_templates(d, ctx, PICKLES["build_codecs_defaults"](d)))]

@case("templates_build_codecs_defaults_train", "smaller", "train")
def _(d, ctx): return train_tiny(d, _templates(d, ctx, PICKLES["build_codecs_defaults"](d)))

@case("ckpt_allow_download_animate", "smaller", "animate")
def _(d, ctx):
    def fn(c):
        c["model_config"]["audio"].update(backend="wav2vec2", name_or_path="facebook/wav2vec2-base-960h", allow_download=True)
        return c
    ck = pt_edit(ctx.ckpt, d / "dl.pt", fn)
    return ["animate", str(write_wav(d / "a.wav")), "--ckpt", str(ck), "--out", str(d / "out" / "o.npy"), "--device", "cpu", "--quiet"]

ANSI = "\x1b[2J\x1b]0;owned\x07\r"

@case("ansi_beat2_csv_train", "smaller", "train")
def _(d, ctx): return b2_train(d, _beat2_csv(d, ctx, [["1_ada_0_1_1", "train"], [f"2_ben_{ANSI}x", "val"]]))

@case("ansi_beat2_csv_check", "smaller", "check-data")
def _(d, ctx): return ["check-data", str(_beat2_csv(d, ctx, [["1_ada_0_1_1", "train"], [f"2_ben_{ANSI}x", "val"]])), "--dataset", "beat2"]

@case("ansi_beat2_type_check", "smaller", "check-data")
def _(d, ctx): return ["check-data", str(_beat2_csv(d, ctx, [["1_ada_0_1_1", f"train{ANSI}"]])), "--dataset", "beat2"]

@case("ansi_react_csv_check", "smaller", "check-data")
def _(d, ctx):
    root = copy_react(d, ctx)
    _react_rows(root, [[0, f"NoXI/{ANSI}/P1/1", "LIS"]])
    return ["check-data", str(root), "--dataset", "react"]

@case("ansi_react_csv_train", "smaller", "train")
def _(d, ctx):
    root = copy_react(d, ctx, full=True)
    _react_rows(root, [[0, f"NoXI/{ANSI}/P1/1", "LIS"]], "train.csv")
    return react_train(d, root)

@case("ansi_audio_name_animate", "smaller", "animate")
def _(d, ctx):
    (d / f"a{ANSI}.wav").write_bytes(b"not audio")
    return animate(d, ctx, d / f"a{ANSI}.wav")

@case("ansi_subject_animate", "smaller", "animate")
def _(d, ctx): return animate(d, ctx, write_wav(d / "a.wav"), "--style", f"x{ANSI}")


# 7. code execution that must keep being refused ----------------------------------------------------------------------
EXEC = ["global_os_system", "global_posix_system", "global_builtins_eval", "stack_global_exec", "dotted_getattr",
        "dotted_allowed_prefix", "inst_os_system", "obj_os_system", "ext_opcode", "persistent_id", "reduce_subprocess",
        "numpy_scalar_object", "numpy_reconstruct_object"]
for _i, _p in enumerate(EXEC):
    def _mk(p, cmd):
        @case(f"pkl_{p}_{cmd}", "code execution", cmd)
        def _(d, ctx):
            if cmd == "animate":
                (d / "t.pkl").write_bytes(PICKLES[p](d))
                return animate(d, ctx, write_wav(d / "a.wav"), "--templates", str(d / "t.pkl"))
            root = copy_tiny(d, ctx)
            if cmd == "lipreader":
                (root / "regions.pkl").write_bytes(PICKLES[p](d))
                return ["lipreader", str(root), "--out", str(d / "out" / "lr.pt"), "--epochs", "1", "--quiet"]
            (root / "templates.pkl").write_bytes(PICKLES[p](d))
            return ["check-data", str(root)] if cmd == "check-data" else train_tiny(d, root)
    _mk(_p, ("check-data", "train", "animate", "lipreader")[_i % 4])

PT_EXEC = {"pt_reduce_os_system": lambda d: in_dict(_g("os", "system") + _u(touch(d)) + b"\x85R"),
           "pt_reduce_builtins_eval": lambda d: in_dict(_g("builtins", "eval") + _u(f"__import__('os').system({touch(d)!r})") + b"\x85R"),
           "pt_inst_posix_system": lambda d: b"(dS'a'\n(S'" + touch(d).encode() + b"'\niposix\nsystem\ns.",
           "pt_numpy_scalar_object": PICKLES["numpy_scalar_object"],
           "pt_persistent_id": lambda d: in_dict(_u(touch(d)) + b"Q")}
for _i, (_n, _f) in enumerate(PT_EXEC.items()):
    def _mk(n, f, cmd):
        @case(f"{n}_{cmd}", "code execution", cmd)
        def _(d, ctx):
            ck = pt_with_pickle(d / "evil.pt", f(d))
            if cmd == "animate":
                return ["animate", str(write_wav(d / "a.wav")), "--ckpt", str(ck), "--out", str(d / "out" / "o.npy"), "--device", "cpu"]
            if cmd == "test": return ["test", f"dataset.root={copy_tiny(d, ctx)}", f"out_dir={d / 'out'}", "--ckpt", str(ck), "--quiet"]
            root, res = _results(d, ctx)
            return ["evaluate", str(res), "--data", str(root), "--lip-reader", str(ck)]
    _mk(_n, _f, ("animate", "test", "evaluate")[_i % 3])

@case("pt_reduce_os_system_sync_expert", "code execution", "evaluate")
def _(d, ctx):
    root, res = _results(d, ctx)
    ck = pt_with_pickle(d / "evil.pt", PT_EXEC["pt_reduce_os_system"](d))
    return ["evaluate", str(res), "--data", str(root), "--eval-expert", str(ck)]

@case("pt_reduce_os_system_compare", "code execution", "animate")
def _(d, ctx):
    root = copy_tiny(d, ctx)
    ck = pt_with_pickle(d / "evil.pt", PT_EXEC["pt_reduce_os_system"](d))
    return ["animate", str(write_wav(d / "a.wav")), "--compare", str(ck), "--regions", str(root / "regions.pkl"),
            "--out", str(d / "out" / "c.mp4"), "--device", "cpu", "--quiet"]


# must succeed cleanly ------------------------------------------------------------------------------------------------
def _stale_gone(d: Path, rec: dict):
    frames = sorted((d / "out" / "seq").glob("*.obj"))
    assert not (d / "out" / "seq" / "frame_09999.obj").exists(), "a stale frame of an earlier, longer run survived"
    assert frames and frames[-1].name == f"frame_{len(frames) - 1:05d}.obj", f"frame files are not 0..T-1: {[f.name for f in frames[-3:]]}"

@success("animate_obj_over_stale_frames", "overwrite", "animate", _stale_gone)
def _(d, ctx):
    seq = d / "out" / "seq"
    seq.mkdir(parents=True)
    for t in (0, 1, 9998, 9999): (seq / f"frame_{t:05d}.obj").write_text("v 0 0 0\n")
    return animate(d, ctx, write_wav(d / "a.wav", 0.5), out="out/seq.obj")

def _ok_table(d: Path, rec: dict):
    assert "LVE" in rec["stdout"], rec["stdout"][-500:]

@success("evaluate_clean_results", "baseline", "evaluate", _ok_table)
def _(d, ctx):
    root, res = _results(d, ctx)
    return ["evaluate", str(res), "--data", str(root)]


# ------------------------------------------------------------------------------------------------------------- runner
CASE_BUDGET = "1G"          # SPEECHFACE_MEMORY_BUDGET of every run: refusals must come from the budget, not the rlimit

def case_env() -> dict:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1",
           "SPEECHFACE_MEMORY_BUDGET": CASE_BUDGET}
    env.pop("SPEECHFACE_DEBUG", None)
    return env

def run_case(c: Case, base: Path, ctx: Ctx, zygote: Zygote) -> dict:
    "Build and run one case; return a record: argv, rc (None on timeout), stdout, stderr, seconds, peak RSS, changed paths, marker."
    d = base / c.name
    d.mkdir(parents=True)
    rec = {"name": c.name, "family": c.family, "command": c.command, "ok_rcs": c.ok_rcs, "argv": None, "rc": None, "stdout": "",
           "stderr": "",
           "seconds": 0.0, "timeout": False, "changed": [], "marker": False, "build_error": None, "dir": d, "maxrss_mib": 0.0}
    try:
        plant_sentinels(d, ctx)
        rec["argv"] = [str(a) for a in c.build(d, ctx)]
    except Exception:                                                     # a builder bug: reported, fails the case
        import traceback
        rec["build_error"] = traceback.format_exc()
        return rec
    before = tree_state(d, c.outputs)
    out, err = base / f"{c.name}.stdout", base / f"{c.name}.stderr"
    r = zygote.run(rec["argv"], d, out, err, case_env(), TIMEOUT_S)
    rec.update(seconds=r["seconds"], timeout=r["timeout"], rc=None if r["timeout"] else r["rc"], maxrss_mib=r["maxrss_mib"])
    rec["stdout"], rec["stderr"] = (p.read_bytes().decode("utf-8", "replace") for p in (out, err))
    rec["changed"] = tree_diff(before, tree_state(d, c.outputs))
    rec["marker"] = (d / MARKER).exists()
    return rec


def hostile_problems(rec: dict) -> list[str]:
    "Every way a hostile case's record breaks the contract (empty: it holds)."
    if rec["build_error"]: return [f"builder failed: {rec['build_error'].strip().splitlines()[-1]}"]
    probs = []
    if rec["timeout"]: probs.append(f"hang: no exit within {TIMEOUT_S} s")
    elif rec["rc"] not in rec["ok_rcs"]: probs.append(f"exit code {rec['rc']}, expected one of {rec['ok_rcs']}")
    if "Traceback" in rec["stderr"] or "Traceback" in rec["stdout"]: probs.append("a traceback was printed")
    lines = rec["stderr"].strip().splitlines()
    quiet_report = (rec["command"] == "check-data" and rec["rc"] == 1 or rec["rc"] == 0) and not lines  # report on stdout
    if not quiet_report and len(lines) != 1: probs.append(f"stderr has {len(lines)} lines, expected exactly one")
    if any(ord(ch) < 32 for l in lines for ch in l): probs.append("stderr carries raw control characters")
    if any(ch in rec["stdout"] for ch in "\x1b\r\x07"): probs.append("stdout carries raw control characters")
    if rec["changed"]: probs.append(f"files outside the output folder changed: {rec['changed'][:6]}")
    if rec["marker"]: probs.append("the code-execution marker file was created")
    return probs


def describe(rec: dict) -> str:
    "A failure message: argv, rc, the tail of stderr."
    return (f"{rec['name']} ({rec['family']}): speechface {' '.join(rec['argv'] or [])[:600]}\n rc={rec['rc']} "
            f"timeout={rec['timeout']} {rec['seconds']:.1f}s\n stderr tail: {rec['stderr'][-1500:]!r}\n stdout tail: "
            f"{rec['stdout'][-400:]!r}")


def stderr_line(rec: dict) -> str:
    "The one stderr line (or the traceback's last line / a note), escaped for a table cell."
    if rec["build_error"]: return "(builder failed)"
    lines = rec["stderr"].strip().splitlines()
    report = rec["stdout"].strip().splitlines()                             # check-data: its first error line
    s = lines[-1] if lines else "(report on stdout) " + next((l for l in report if l.startswith("ERROR")), (report or [""])[-1])
    s = s.replace(str(rec["dir"]), "CASE")                                   # the case's temporary folder, for a stable table
    if rec["timeout"]: s = f"(killed after {TIMEOUT_S} s) " + s
    return s.encode("unicode_escape").decode("ascii").replace("|", "\\|")[:300]


def write_table(recs: list[dict], path: str | Path, problems: Callable = hostile_problems) -> None:
    "Markdown table at `path` and the same rows as CSV beside it: case, family, command, exit code, peak RSS, the stderr line, verdict."
    import pandas as pd
    rows = [{"case": r["name"], "family": r["family"], "command": r["command"], "exit": "timeout" if r["timeout"] else r["rc"],
             "peak_rss_mib": round(r["maxrss_mib"]), "seconds": round(r["seconds"], 1), "stderr_line": stderr_line(r),
             "verdict": "ok" if not problems(r) else "FAIL: " + "; ".join(problems(r))} for r in recs]
    df = pd.DataFrame(rows)
    df.to_csv(Path(path).with_suffix(".csv"), index=False)
    md = df.drop(columns=["seconds"]).assign(verdict=df.verdict.str.replace("|", "/", regex=False))
    Path(path).write_text(md.to_markdown(index=False) + "\n")
