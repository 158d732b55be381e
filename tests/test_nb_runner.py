"The notebook runner (tools/test_nbs.py) that CI uses: a notebook's temporary files go when it ends."
import json, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _notebook(path: Path, source: str):
    nb = {"cells": [{"cell_type": "code", "execution_count": None, "id": "probe", "metadata": {}, "outputs": [], "source": source}],
          "metadata": {"kernelspec": {"display_name": "python3", "language": "python", "name": "python3"}},
          "nbformat": 4, "nbformat_minor": 5}
    path.write_text(json.dumps(nb))


def test_runner_removes_a_notebooks_temporary_files(tmp_path, monkeypatch):
    probe = tmp_path / "probe.txt"
    monkeypatch.setenv("NB_PROBE", str(probe))
    _notebook(tmp_path / "scratch.ipynb", "import os, tempfile\nfrom pathlib import Path\nd = Path(tempfile.mkdtemp())\n"
              "(d / 'big.bin').write_bytes(bytes(1 << 20))\nPath(os.environ['NB_PROBE']).write_text(str(d))")
    r = subprocess.run([sys.executable, "tools/test_nbs.py", "--workers", "1", str(tmp_path / "scratch.ipynb")],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    written = Path(probe.read_text())
    assert written.parent.name.startswith("nb-scratch-"), written   # the notebook's own folder, not the shared /tmp
    assert not written.exists() and not written.parent.exists()


def test_runner_counts_a_failing_notebook(tmp_path):
    _notebook(tmp_path / "broken.ipynb", "assert 1 == 2, 'deliberate'")
    cmd = [sys.executable, "tools/test_nbs.py", "--workers", "1", "--counts", str(tmp_path / "n"), str(tmp_path / "broken.ipynb")]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 1 and "deliberate" in r.stderr
    assert (tmp_path / "n").read_text().split() == ["0", "1"]
