"""End-to-end tests of the synthetic corpus and the CLI, run as a user would (subprocesses)."""
import hashlib, json, shutil, subprocess, sys
from pathlib import Path
import numpy as np, pytest

from speechface.data.dataset import FaceFormerDataset, DataError
from clirun import run


def digest(root):
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(Path(root).rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("c") / "tiny"
    run("synth", "--preset", "tiny", "--out", str(root), "--quiet")
    return root


def test_tiny_layout(tiny):
    root = tiny                              # its speed: benchmarks/bench_first_calls.py
    for p in ("wav", "vertices_npy", "textgrids", "templates.pkl", "regions.pkl", "faces.npy", "metadata.json"):
        assert (root / p).exists(), p
    meta = json.loads((root / "metadata.json").read_text())
    assert meta["seed"] == 0 and meta["version"] and meta["fps"] == 30
    assert [len(meta["split"][k]["subjects"]) for k in ("train", "val", "test")] == [8, 2, 2]


def test_deterministic_across_processes(tiny, tmp_path):
    root = tiny
    run("synth", "--preset", "tiny", "--out", str(tmp_path / "again"), "--quiet")
    run("synth", "--preset", "tiny", "--seed", "1", "--out", str(tmp_path / "other"), "--quiet")
    a, b, c = digest(root), digest(tmp_path / "again"), digest(tmp_path / "other")
    assert a == b
    assert sum(a[k] != c.get(k) for k in a) > len(a) // 2


def test_split_and_one_hot_rules(tiny):
    root = tiny
    tr, va, te = (FaceFormerDataset(root, s, with_mel=False) for s in ("train", "val", "test"))
    assert (len(tr), len(va), len(te)) == (16, 2, 2)
    assert {it.subject for it in va.items} == {"synth_f5", "synth_m5"}
    assert all(21 <= it.sentence <= 40 for it in va.items + te.items)
    for x in tr:
        i = tr.train_subjects.index(x["subject"])
        assert x["one_hot"].shape == (8,) and x["one_hot"][i] == 1 and x["one_hot"].sum() == 1
    assert np.array_equal(te[0]["one_hot"], np.eye(8))
    ind = FaceFormerDataset(root, "test", style="independent", with_mel=False)[0]["one_hot"]
    assert np.allclose(ind, 1 / 8)


def test_check_data_ok_and_error_exit_codes(tiny, tmp_path):
    root = tiny
    r = run("check-data", str(root))
    assert "OK: no problems found" in r.stdout
    import shutil
    bad = tmp_path / "bad"
    shutil.copytree(root, bad)
    v = np.load(bad / "vertices_npy" / "synth_m1_sentence02.npy")
    v[4] = np.inf
    np.save(bad / "vertices_npy" / "synth_m1_sentence02.npy", v)
    r = run("check-data", str(bad), check=False)
    assert r.returncode == 1 and "synth_m1_sentence02.npy" in r.stdout and "NaN/inf" in r.stdout


def test_check_data_missing_folder_is_an_error(tmp_path):
    r = run("check-data", str(tmp_path / "nope"), check=False)
    assert r.returncode == 1 and "does not exist" in r.stdout


def test_malicious_templates_refused_by_dataset(tiny, tmp_path):
    root = tiny
    import shutil
    bad = tmp_path / "evil"
    shutil.copytree(root, bad)
    marker = tmp_path / "ran"
    (bad / "templates.pkl").write_bytes(f"cos\nsystem\n(S'touch {marker}'\ntR.".encode())
    with pytest.raises(DataError, match="templates.pkl.*refused to load 'os.system'"):
        FaceFormerDataset(bad, "train")
    r = run("check-data", str(bad), check=False)
    assert r.returncode == 1 and "refused to load" in r.stdout
    assert not marker.exists()


def test_baselines_command(tiny):
    root = tiny
    r = run("baselines", str(root))
    assert "static template" in r.stdout and "oracle (generator)" in r.stdout and "LVE" in r.stdout


def test_voca_preset_has_vocaset_dimensions(tmp_path):
    from speechface.data.head import build_head
    from speechface.data.synth import PRESETS
    assert PRESETS["voca"].n_vertices == 5023
    h = build_head(PRESETS["voca"].n_vertices)
    assert h.vertices.reshape(-1).shape == (15069,)


def test_unknown_preset_is_a_clear_error(tmp_path):
    r = run("synth", "--preset", "huge", "--out", str(tmp_path / "x"), check=False)
    assert r.returncode != 0 and "invalid choice" in r.stderr


def test_workers_do_not_rerun_the_callers_script(tmp_path):
    "Each utterance's worker must not re-run __main__ (a script importing torch at the top made that 1 s per utterance)."
    log, script = tmp_path / "imports.log", tmp_path / "user_script.py"
    script.write_text(f"import os\nopen({str(log)!r}, 'a').write(f'{{os.getpid()}}\\n')\n"
                      "from speechface.data.synth import generate_corpus\n"
                      f"if __name__ == '__main__': generate_corpus({str(tmp_path / 'c')!r}, 'tiny', progress=False)\n")
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert len(log.read_text().splitlines()) == 1            # the script ran once: in the parent only
    assert len(list((tmp_path / "c" / "wav").glob("*.wav"))) == 20


def test_dyadic_corpus_from_the_cli_and_check_data(tmp_path):
    root = tmp_path / "dyadic"
    r = run("synth", "--preset", "dyadic-tiny", "--out", str(root), "--quiet")
    assert "speaker-listener pairs of 251 frames" in r.stdout and "REACT2024 layout" in r.stdout, r.stdout
    for split in ("train", "val", "test"):
        assert (root / f"{split}.csv").is_file() and (root / f"neighbour_emotion_{split}.npy").is_file()
    ok = run("check-data", str(root))                                  # told apart from a FaceFormer folder by its layout
    assert "OK: no problems found" in ok.stdout and "react" in ok.stdout, ok.stdout
    npy = sorted((root / "test" / "3D_FV_files").rglob("*.npy"))[0]
    npy.write_bytes(npy.read_bytes()[:200])                             # truncated
    csv = sorted((root / "val" / "Emotion").rglob("*.csv"))[0]
    csv.write_text(csv.read_text().replace(",", ";", 30))               # wrong separator in the first rows
    bad = run("check-data", str(root), "--dataset", "react", check=False)
    assert bad.returncode == 1, bad.stdout
    assert str(npy) in bad.stdout and "truncated" in bad.stdout, bad.stdout
    assert str(csv) in bad.stdout, bad.stdout


@pytest.mark.skipif(shutil.which("festival") is None, reason="Festival is not installed (apt-get install festival "
                    "festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts); CI installs it")
def test_synth_with_festival_voices_loads_and_checks(tmp_path):
    root = tmp_path / "mixed"
    run("synth", "--preset", "tiny", "--voices", "espeak,festival", "--out", str(root), "--quiet")
    meta = json.loads((root / "metadata.json").read_text())
    assert meta["voices"] == ["espeak", "festival"]
    fams = {n: s["family"] for n, s in meta["subjects"].items()}
    assert sorted(fams.values()).count("festival") == 12 and sorted(fams.values()).count("espeak") == 12
    tr = FaceFormerDataset(root, "train", with_mel=False)
    assert len(tr.train_subjects) == 14 and {fams[s] for s in tr.train_subjects} == {"espeak", "festival"}
    assert {it.subject for it in FaceFormerDataset(root, "test", with_mel=False).items} >= {"fest_kal4", "fest_ked4", "fest_slt4"}
    r = run("check-data", str(root))
    assert "OK: no problems found" in r.stdout
