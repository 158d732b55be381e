"""Hostile FaceFormer-layout folders (and the BEAT2/REACT branches of check-data) through the real CLI: `check-data` lists
the problem and exits 1, `baselines` and `train` print one line and exit 2 — never a hang, never a traceback, never "OK".
Every case damages a copy of the cached tiny corpus; FIFO cases would block forever before issue 26."""
import io, json, os, shutil, subprocess
from pathlib import Path

import numpy as np
import pytest
from forkrun import run_cli

TIMEOUT = 60          # a FIFO read blocks forever: a case that needs this long has hung
TINY = ["model.feature_dim=32", "model.audio.mel_dim=32", "trainer.batch_size=4", "trainer.epochs=1"]
ANSI = "\x1b[2J\x1b]0;owned\x07"
STEM = "synth_m6_sentence21"       # a test-split utterance: read by check-data, baselines and train's validation


def speechface(*args, cwd) -> subprocess.CompletedProcess:
    "Run `speechface ARGS` in a fresh process (`forkrun`) with a timeout; the test fails (it does not wait forever) if it hangs."
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}
    env.pop("SPEECHFACE_DEBUG", None)
    try:
        return run_cli(*args, cwd=cwd, env=env, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"speechface {' '.join(map(str, args))[:200]} hung for {TIMEOUT} s")


@pytest.fixture
def corpus(tmp_path, tiny_corpus) -> Path:
    "A private copy of the tiny corpus to damage."
    return Path(shutil.copytree(tiny_corpus, tmp_path / "data", ignore=shutil.ignore_patterns(".manifest.json")))


# ------------------------------------------------------------------------------------------------------- damage
def set_meta(**kw):
    def edit(r: Path):
        m = json.loads((r / "metadata.json").read_text())
        m.update(kw)
        (r / "metadata.json").write_text(json.dumps(m))
    return edit

def fifo(rel: str):
    def edit(r: Path):
        (r / rel).unlink()
        os.mkfifo(r / rel)
    return edit

def header_only(r: Path):
    h = io.BytesIO()
    np.lib.format.write_array_header_1_0(h, {"descr": "<f4", "fortran_order": False, "shape": (2**34, 900)})
    (r / "vertices_npy" / f"{STEM}.npy").write_bytes(h.getvalue() + bytes(64))

def symlink_outside(r: Path):
    f = r / "vertices_npy" / f"{STEM}.npy"
    f.rename(r.parent / "elsewhere.npy")
    f.symlink_to(r.parent / "elsewhere.npy")

def masks_outside(r: Path):
    (r.parent / "elsewhere").mkdir()
    (r / "regions.pkl").rename(r.parent / "elsewhere" / "regions.pkl")
    set_meta(masks="../elsewhere/regions.pkl")(r)

def templates_payload(payload: bytes):
    def edit(r: Path): (r / "templates.pkl").write_bytes(payload)
    return edit

def pickled(obj) -> bytes:
    import pickle
    return pickle.dumps(obj, protocol=2)

def ansi_name(r: Path):
    for sub, ext in (("wav", ".wav"), ("vertices_npy", ".npy"), ("textgrids", ".TextGrid")):
        (r / sub / f"{STEM}{ext}").rename(r / sub / f"x{ANSI}_sentence21{ext}")

def write(rel: str, data: bytes):
    def edit(r: Path): (r / rel).write_bytes(data)
    return edit


# ------------------------------------------------------------------------------------------------- check-data
CHECK = {   # name -> (damage, what the report must say)
    "fifo_vertices": (fifo(f"vertices_npy/{STEM}.npy"), "found a FIFO"),
    "fifo_wav": (fifo(f"wav/{STEM}.wav"), "found a FIFO"),
    "fifo_textgrid": (fifo(f"textgrids/{STEM}.TextGrid"), "found a FIFO"),
    "fifo_templates": (fifo("templates.pkl"), "found a FIFO"),
    "fifo_regions": (fifo("regions.pkl"), "found a FIFO"),
    "fifo_metadata": (fifo("metadata.json"), "found a FIFO"),
    "npy_header_2_34_frames": (header_only, "the file is truncated or its header is wrong"),
    "npy_object_array": (lambda r: np.save(r / "vertices_npy" / f"{STEM}.npy", np.array([{}] * 3, object), allow_pickle=True),
                         "holds Python objects"),
    "npy_strings": (lambda r: np.save(r / "vertices_npy" / f"{STEM}.npy", np.full((60, 900), "x")), "vertex array of <U1"),
    "npy_symlink_outside": (symlink_outside, "leads outside"),
    "meta_masks_dotdot": (masks_outside, "field 'masks'"),
    "meta_masks_absolute": (set_meta(masks="/etc/passwd"), "field 'masks'"),
    "meta_textgrids_dotdot": (set_meta(textgrids="../elsewhere"), "field 'textgrids'"),
    "meta_not_json": (write("metadata.json", b"{not json"), "not valid JSON"),
    "meta_list": (write("metadata.json", b"[1, 2, 3]"), "expected a JSON object"),
    "meta_non_utf8": (write("metadata.json", b'{"fps": 30, "x": "\xff"}'), "not UTF-8"),
    "meta_fps_0": (set_meta(fps=0), "field 'fps' must be a positive number"),
    "meta_fps_negative": (set_meta(fps=-3), "field 'fps' must be a positive number"),
    "meta_n_vertices_str": (set_meta(n_vertices="300"), "field 'n_vertices' must be a positive integer"),
    "meta_masks_not_str": (set_meta(masks=12), "field 'masks'"),
    "meta_no_split": (set_meta(split=None), "field 'split' is missing"),
    "meta_split_sentences_int": (set_meta(split={"train": {"subjects": ["synth_f1"], "sentences": 5}}), "field 'split.train.sentences'"),
    "meta_split_subjects_str": (set_meta(split={"train": {"subjects": "synth_f1", "sentences": [1, 40]}}), "field 'split.train.subjects'"),
    "templates_truncated": (lambda r: (r / "templates.pkl").write_bytes((r / "templates.pkl").read_bytes()[:100]), "templates.pkl: "),
    "templates_str_value": (templates_payload(pickled({"synth_f1": "not a mesh"})), "is a str, expected a numeric array"),
    "templates_bytearray_value": (templates_payload(pickled({"synth_f1": bytearray(3600)})), "is a bytearray"),
    "templates_dict_value": (templates_payload(pickled({"synth_f1": {"v": 1}})), "is a dict"),
    "templates_escaping_key": (templates_payload(pickled({"../x": np.zeros((300, 3))})), "not a plain file name"),
    "textgrid_garbage": (write(f"textgrids/{STEM}.TextGrid", os.urandom(300)), "unreadable TextGrid"),
    "textgrid_latin1": (write(f"textgrids/{STEM}.TextGrid", b'File type = "ooTextFile"\nObject class = "TextGrid"\n\xe9'),
                        "unreadable TextGrid"),
}


@pytest.mark.parametrize("name", sorted(CHECK))
def test_check_data_lists_the_problem(corpus, tmp_path, name):
    "check-data exits 1 with the problem on stdout: no traceback, no hang, no 'OK'."
    damage, says = CHECK[name]
    damage(corpus)
    r = speechface("check-data", corpus, cwd=tmp_path)
    out = r.stdout + r.stderr
    assert r.returncode == 1, f"rc={r.returncode}\n{out[-3000:]}"
    assert "Traceback" not in out and "OK: no problems" not in r.stdout, out[-3000:]
    assert says in r.stdout and "ERROR" in r.stdout, r.stdout[-3000:]
    assert not r.stderr.strip(), r.stderr[-2000:]


def test_check_data_escapes_control_characters(corpus, tmp_path):
    "A file name carrying terminal escapes is printed escaped, never obeyed."
    ansi_name(corpus)
    r = speechface("check-data", corpus, cwd=tmp_path)
    assert r.returncode == 1 and "Traceback" not in r.stdout + r.stderr, r.stdout[-2000:] + r.stderr[-2000:]
    assert not any(ch in r.stdout + r.stderr for ch in "\x1b\x07\r") and "\\x1b[2J" in r.stdout, r.stdout[-2000:]


def test_check_data_beat2_fifo_split_csv(tmp_path):
    "The BEAT2 branch: a FIFO in place of train_test_split.csv is an error line, not a blocked read."
    from speechface.data.beat2_synth import cached_beat2_corpus
    root = Path(shutil.copytree(cached_beat2_corpus("tiny"), tmp_path / "beat2", ignore=shutil.ignore_patterns(".manifest.json")))
    fifo("train_test_split.csv")(root)
    r = speechface("check-data", root, "--dataset", "beat2", cwd=tmp_path)
    assert r.returncode == 1 and "Traceback" not in r.stdout + r.stderr and "found a FIFO" in r.stdout, r.stdout + r.stderr[-2000:]


def test_check_data_react_fifo_files(tmp_path):
    "The REACT branch: FIFOs in place of an emotion CSV and a 3DMM file are error lines, not blocked reads."
    from speechface.data.dyadic import cached_dyadic_corpus
    from speechface.data.react import read_pairs_csv, react_paths
    root = Path(shutil.copytree(cached_dyadic_corpus("tiny"), tmp_path / "react", ignore=shutil.ignore_patterns(".manifest.json")))
    seq = read_pairs_csv(root / "val.csv")[0][0]
    for m in ("emotion", "3dmm"):
        p = react_paths(root, "val", seq)[m]
        p.unlink()
        os.mkfifo(p)
    r = speechface("check-data", root, "--dataset", "react", cwd=tmp_path)
    assert r.returncode == 1 and "Traceback" not in r.stdout + r.stderr, r.stdout[-2000:] + r.stderr[-2000:]
    assert r.stdout.count("found a FIFO") >= 2, r.stdout[-3000:]


def test_check_data_clean_corpus_is_ok(tiny_corpus, tmp_path):
    "The guard of the cases above: the undamaged corpus passes."
    r = speechface("check-data", tiny_corpus, cwd=tmp_path)
    assert r.returncode == 0 and "OK: no problems found" in r.stdout, r.stdout[-2000:] + r.stderr[-2000:]


# ------------------------------------------------------------------------------------------- baselines and train
def one_line_error(r: subprocess.CompletedProcess, cmd: str, says: str):
    "Exit 2 with exactly one stderr line `speechface CMD: error: ...` containing `says`, no traceback."
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2, f"rc={r.returncode}\n{r.stdout[-1500:]}\n{r.stderr[-3000:]}"
    assert "Traceback" not in r.stdout + r.stderr and len(lines) == 1, r.stderr[-3000:]
    assert lines[0].startswith(f"speechface {cmd}: error: ") and says in lines[0], lines[0]
    assert not any(ord(c) < 32 for c in lines[0]), repr(lines[0])


BASELINES = {
    "fifo_vertices": (fifo(f"vertices_npy/{STEM}.npy"), [], "found a FIFO"),
    "fifo_wav": (fifo(f"wav/{STEM}.wav"), [], "found a FIFO"),
    "meta_not_json": (write("metadata.json", b"{not json"), [], "not valid JSON"),
    "meta_no_split": (set_meta(split=None), [], "field 'split' is missing"),
    "meta_fps_negative": (set_meta(fps=-3), [], "field 'fps' must be a positive number"),
    "meta_masks_null": (set_meta(masks=None), [], "names no region file"),
    "split_nope": (lambda r: None, ["--splits", "nope"], "unknown split 'nope'"),
    "templates_str_value": (templates_payload(pickled({"synth_f1": "x"})), [], "is a str"),
    "npy_header_2_34_frames": (header_only, [], "the file is truncated or its header is wrong"),
}


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_baselines_one_line(corpus, tmp_path, name):
    damage, extra, says = BASELINES[name]
    damage(corpus)
    one_line_error(speechface("baselines", corpus, *extra, cwd=tmp_path), "baselines", says)


TRAIN = {   # train reads the train and val splits: synth_f1 is a training speaker
    "fifo_vertices": (fifo("vertices_npy/synth_f1_sentence01.npy"), [], "found a FIFO"),
    "fifo_wav": (fifo("wav/synth_f1_sentence02.wav"), [], "found a FIFO"),
    "meta_not_json": (write("metadata.json", b"{not json"), [], "not valid JSON"),
    "meta_sentences_int": (set_meta(split={"train": {"subjects": ["synth_f1"], "sentences": 5},
                                           "val": {"subjects": ["synth_f5"], "sentences": [21, 40]}}), [], "field 'split.train.sentences'"),
    "meta_textgrids_absolute": (set_meta(textgrids="/tmp"), ["trainer.phone_weight=1.0"], "field 'textgrids'"),
}


@pytest.mark.parametrize("name", sorted(TRAIN))
def test_train_one_line(corpus, tmp_path, name):
    damage, extra, says = TRAIN[name]
    damage(corpus)
    r = speechface("train", f"dataset.root={corpus}", f"out_dir={tmp_path / 'out'}", "trainer=cpu", *TINY, *extra, "--quiet", cwd=tmp_path)
    one_line_error(r, "train", says)
