"""Hostile REACT2024-layout corpora against the real CLI (`speechface check-data`, `speechface train trainer=reaction_vae`):
paths in the pairs csv that climb out, absolute paths, a symlink out of the corpus, a FIFO in place of a 3DMM .npy,
an .npy whose header lies, a pairs csv that is not UTF-8 or has a field over the csv limit, terminal escapes in a
name. Each must end in one line (train: exit 2, one stderr line) or a listed problem (check-data: exit 1, the report
on stdout), never a traceback, a hang or raw control characters, and no file outside the run's output may change.
The cached corpus is copied first (`shutil.copytree`): it is never damaged in place."""
import hashlib, os, shutil, stat, subprocess
from pathlib import Path

import numpy as np
import pytest
from forkrun import run_cli

TIMEOUT = 60
SEQ = "NoXI/001_synth/P1/1"                       # the first speaker of train.csv in the tiny dyadic corpus
TINY_VAE = ["trainer=reaction_vae", "trainer.epochs=1", "trainer.batch_size=4", "trainer.crop=64", "trainer.feature_dim=32",
            "trainer.latent_dim=16", "trainer.n_heads=2", "trainer.n_encoder_layers=1", "trainer.n_decoder_layers=1",
            "trainer.n_samples=2", "trainer.face=3dmm"]
ANSI = "\x1b[2J\x1b[1;1HOK: no problems found\x1b[8m"


@pytest.fixture(scope="module")
def dyadic():
    from speechface.data.dyadic import cached_dyadic_corpus
    return Path(cached_dyadic_corpus("tiny"))


def tree(root: Path) -> dict:
    "relative path -> sha256 / link target / kind, without following links or opening anything but regular files."
    out = {}
    for dirpath, dirs, files in os.walk(root, followlinks=False):
        for n in dirs + files:
            p = Path(dirpath) / n
            st = os.lstat(p)
            rel = str(p.relative_to(root))
            if stat.S_ISLNK(st.st_mode): out[rel] = ("link", os.readlink(p))
            elif stat.S_ISREG(st.st_mode): out[rel] = ("file", hashlib.sha256(p.read_bytes()).hexdigest())
            else: out[rel] = ("other", stat.S_IFMT(st.st_mode))
    return out


def _rows(root: Path, rows: list, name: str = "train.csv"):
    "Replace the pairs csv by these rows (header kept)."
    (root / name).write_text(",speaker_path,listener_path\n" + "".join(f"{i},{s},{l}\n" for i, (s, l) in enumerate(rows)))


def _npy(root: Path) -> Path: return root / "train" / "3D_FV_files" / f"{SEQ}.npy"


def _lying_header(root: Path):
    "A 3DMM .npy whose header declares 9,999,999 frames over the 251 it holds (same header length: the padding shrinks)."
    p = _npy(root)
    b = p.read_bytes()
    assert b"(251, 1, 58), }  " in b[:128]
    p.write_bytes(b.replace(b"(251, 1, 58), }  ", b"(9999999, 1, 58)}", 1))


def _fifo(root: Path):
    p = _npy(root)
    p.unlink()
    os.mkfifo(p)


def _symlink_out(root: Path):
    "The 3DMM folder of one site replaced by a symlink to a folder outside the corpus that holds valid-looking files."
    site = root / "train" / "3D_FV_files" / "NoXI"
    outside = root.parent / "sentinel" / "elsewhere"
    shutil.copytree(site, outside)
    shutil.rmtree(site)
    os.symlink(outside, site)


DAMAGE = {   # name -> (what it does to the copied corpus ROOT, a word the one line / the report must contain)
    "dotdot": (lambda r: _rows(r, [("NoXI/../../../sentinel/secret", "NoXI/001_synth/P2/1")]), "not a relative sequence path"),
    "absolute": (lambda r: _rows(r, [(str(r.parent / "sentinel" / "secret"), "NoXI/001_synth/P2/1")]), "not a relative sequence path"),
    "symlink_out": (_symlink_out, "leads outside"),
    "fifo_3dmm": (_fifo, "FIFO"),
    "lying_npy_header": (_lying_header, "declares shape (9999999, 1, 58)"),
    "non_utf8_csv": (lambda r: (r / "train.csv").write_bytes(b",speaker_path,listener_path\n"
                                                             b"0,NoXI/001_synth/P1/1\xe9,NoXI/001_synth/P2/1\n"),
                     "not UTF-8"),
    "csv_field_limit": (lambda r: _rows(r, [("NoXI/" + "x" * 200_000, "NoXI/001_synth/P2/1")]), "field larger than field limit"),
    "ansi_name": (lambda r: _rows(r, [(f"NoXI/{ANSI}/P1/1", "NoXI/001_synth/P2/1")]), "\\x1b[2J"),
}


@pytest.fixture
def damaged(request, tmp_path, dyadic):
    "(case folder, corpus copy) after the damage, with a sentinel folder beside the corpus and the state of both recorded."
    sentinel = tmp_path / "sentinel"
    sentinel.mkdir()
    np.save(sentinel / "secret.npy", np.zeros((251, 1, 58), np.float32))              # what an escaping path would read
    (sentinel / "notes.txt").write_text("do not touch\n")
    root = tmp_path / "react"
    shutil.copytree(dyadic, root, ignore=shutil.ignore_patterns(".manifest.json"))      # never damage the cache itself
    DAMAGE[request.param][0](root)
    return tmp_path, root, DAMAGE[request.param][1], tree(root), tree(sentinel)


def _run(cwd: Path, *args) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}
    env.pop("SPEECHFACE_DEBUG", None)
    return run_cli(*args, cwd=cwd, env=env, timeout=TIMEOUT)


def _unchanged(d: Path, root: Path, before_root: dict, before_sentinel: dict):
    assert tree(d / "sentinel") == before_sentinel, "a file beside the corpus changed"
    assert tree(root) == before_root, "the corpus changed"


@pytest.mark.parametrize("damaged", list(DAMAGE), indirect=True)
def test_check_data_lists_the_problem(damaged):
    d, root, needle, before_root, before_sentinel = damaged
    r = _run(d, "check-data", root, "--dataset", "react")
    assert "Traceback" not in r.stdout + r.stderr, r.stderr[-2000:]
    assert r.returncode == 1, (r.returncode, r.stdout[-2000:], r.stderr[-2000:])
    assert not r.stderr.strip(), r.stderr[-2000:]                                   # the report is on stdout
    assert needle in r.stdout and "ERROR" in r.stdout, r.stdout[-3000:]
    assert not any(c in r.stdout for c in "\x1b\r\x07"), "raw control characters reached the terminal"
    _unchanged(d, root, before_root, before_sentinel)


@pytest.mark.parametrize("damaged", list(DAMAGE), indirect=True)
def test_train_stops_with_one_line(damaged):
    d, root, needle, before_root, before_sentinel = damaged
    r = _run(d, "train", "dataset=dyadic", f"dataset.root={root}", f"out_dir={d / 'out'}", "run=r", "threads=1", *TINY_VAE, "--quiet")
    lines = r.stderr.strip().splitlines()
    assert "Traceback" not in r.stdout + r.stderr, r.stderr[-3000:]
    assert r.returncode == 2 and len(lines) == 1, (r.returncode, r.stderr[-3000:])
    assert needle in lines[0], lines[0]
    assert not any(ord(c) < 32 for c in lines[0]), "raw control characters in the error line"
    _unchanged(d, root, before_root, before_sentinel)


def test_clean_copy_passes(tmp_path, dyadic):
    "The control: the same copy undamaged is clean for check-data, and nothing is written into it."
    root = tmp_path / "react"
    shutil.copytree(dyadic, root, ignore=shutil.ignore_patterns(".manifest.json"))
    before = tree(root)
    r = _run(tmp_path, "check-data", root, "--dataset", "react")
    assert r.returncode == 0 and "OK: no problems found" in r.stdout, (r.stdout[-2000:], r.stderr[-2000:])
    assert tree(root) == before
