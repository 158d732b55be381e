"""The house rules, read from the code: imports point down the notebook layers, none hides in a function to dodge a
cycle, the layer diagram in docs/DEVELOPING.md is the code's, and the README lists every notebook in order."""
import re, sys, textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import layers  # noqa: E402


def test_imports_point_down_and_sit_at_module_level():
    assert layers.violations() == []


def test_the_checker_sees_upward_and_hidden_imports(tmp_path):
    src = tmp_path / "m.py"
    src.write_text(textwrap.dedent("""
        from speechface.core import UserError
        from ..train.rl import train_rl
        def f():
            from speechface.pipeline import run_demo
            import speechface.cli
    """))
    got = layers.module_imports(src, "speechface.data.m")
    assert got == [("speechface.core", False, 2), ("speechface.train.rl", False, 3),
                   ("speechface.pipeline", True, 5), ("speechface.cli", True, 6)]
    mods = layers.notebook_modules()
    assert mods["speechface.data.dataset"][0] < mods["speechface.models.faceformer"][0] < mods["speechface.metrics.mesh"][0] \
        < mods["speechface.evaluation.baselines"][0] < mods["speechface.train.rl"][0] < mods["speechface.cli"][0]


def test_developing_md_shows_the_codes_layers():
    doc = (ROOT / "docs" / "DEVELOPING.md").read_text()
    block = re.search(r"<!-- layers:begin -->\n```\n(.*?)\n```\n<!-- layers:end -->", doc, re.S)
    assert block, "docs/DEVELOPING.md lacks the layers block"
    assert block.group(1) == layers.diagram(), "the layer diagram is stale: paste `python tools/layers.py` into docs/DEVELOPING.md"


def test_readme_table_lists_every_notebook_in_numeric_order():
    readme = (ROOT / "README.md").read_text()
    listed = re.findall(r"^\| `(\d\d[a-z]?_[\w.]+|index)` \|", readme, re.M)
    on_disk = sorted(p.stem for p in (ROOT / "nbs").glob("[0-9]*.ipynb"))
    assert [n for n in listed if n != "index"] == on_disk
