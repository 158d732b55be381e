"""Build README.md from nbs/index.ipynb offline (quarto/nbdev_readme need the network here).

Markdown cells are copied; code cells become ```python blocks followed by their stored text outputs.
Cells marked `#| hide` are left out. `--check` exits 1 when README.md differs from what would be written.
"""
import json, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

def render(nb_path: Path) -> str:
    nb = json.loads(nb_path.read_text(encoding="utf-8"))
    parts = []
    for cell in nb["cells"]:
        src = "".join(cell["source"]).rstrip()
        if not src: continue
        lines = src.splitlines()
        directives = [l for l in lines if l.startswith("#|")]
        if any(d.replace(" ", "") in ("#|hide", "#|exporthide") for d in directives): continue
        body = "\n".join(l for l in lines if not l.startswith("#|")).strip()
        if cell["cell_type"] == "markdown":
            parts.append(body)
        elif cell["cell_type"] == "code" and body:
            parts.append(f"```python\n{body}\n```")
            for out in cell.get("outputs", []):
                text = out.get("text") or out.get("data", {}).get("text/plain")
                if text: parts.append("```\n" + "".join(text).rstrip() + "\n```")
    return "<!-- generated from nbs/index.ipynb by tools/make_readme.py; do not edit -->\n\n" + "\n\n".join(parts) + "\n"

def main():
    out = ROOT / "README.md"
    text = render(ROOT / "nbs" / "index.ipynb")
    if "--check" in sys.argv:
        if not out.exists() or out.read_text(encoding="utf-8") != text:
            print("README.md is out of date with nbs/index.ipynb: run `python tools/make_readme.py`", file=sys.stderr)
            sys.exit(1)
        return
    out.write_text(text, encoding="utf-8")

if __name__ == "__main__": main()
