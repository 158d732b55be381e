"""The import graph of the package, read from the code, checked against the notebook numbering.

Every module is exported by one notebook, and a notebook's number says its layer: 0x core and data, 1x models,
2x metrics, viz and export (retargeting, ARKit, glTF), 3x evaluation and inference (animate, test), 4x training,
5x benchmarks / pipeline / CLI (9x: tutorials and reports, no modules). The rules, checked by tests/test_layers.py:

* a module imports only modules of lower-numbered notebooks (imports point down, never in a circle);
* a module's decade matches its sub-package (`speechface.data.*` in 0x, `speechface.models.*` in 1x, ...);
* speechface imports sit at module level, where the graph can be seen, except in the modules of `LAZY`, which
  import inside functions for a measured reason (kept short, stated here and in docs/DEVELOPING.md).

Usage: python tools/layers.py            print the layer diagram (the block in docs/DEVELOPING.md)
       python tools/layers.py --check    exit 1 with the violations, if any
"""
import ast, json, re, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "speechface"

DECADES = {0: ("core", "data"), 1: ("models",), 2: ("metrics", "viz", "export"), 3: ("evaluation", "inference"), 4: ("train",),
           5: ("bench", "pipeline", "cli")}
LAYER_NAMES = {0: "core and data", 1: "models", 2: "metrics, viz and export", 3: "evaluation and inference", 4: "training",
               5: "benchmarks, pipeline, CLI"}
# modules allowed to import speechface modules inside functions, and why (measured; see docs/DEVELOPING.md)
LAZY = {"speechface.cli": "must import without torch: the corpus generator's forkserver workers re-run the console "
                          "script, and one torch import there made `speechface synth --preset tiny` 12 s instead of 0.5 s"}


def notebook_modules() -> dict:
    "module name -> (notebook number, notebook stem), from each notebook's `#| default_exp`."
    out = {}
    for nb in sorted((ROOT / "nbs").glob("*.ipynb")):
        m = re.match(r"(\d+)([a-z]?)_", nb.name)
        if not m: continue
        num = int(m.group(1)) + (ord(m.group(2)) - ord("a") + 1) / 100 if m.group(2) else int(m.group(1))  # 08a -> 8.01
        for c in json.loads(nb.read_text())["cells"]:
            src = "".join(c["source"])
            hit = re.search(r"^#\|\s*default_exp\s+(\S+)", src, re.M)
            if hit:
                out["speechface." + hit.group(1)] = (num, nb.stem)
                break
    return out


def module_imports(path: Path, module: str) -> list:
    "[(imported speechface module, inside a function?, line)] of one source file (relative imports resolved)."
    tree = ast.parse(path.read_text())
    found = []
    def visit(node, infunc):
        for ch in ast.iter_child_nodes(node):
            f = infunc or isinstance(ch, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(ch, ast.ImportFrom):
                if ch.level:
                    base = (module.split(".")[:-ch.level] if path.name != "__init__.py"
                            else module.split(".")[:len(module.split(".")) - ch.level + 1])
                    target = ".".join(base + ([ch.module] if ch.module else []))
                else: target = ch.module or ""
                if target == "speechface" or target.startswith("speechface."):
                    names = [target + "." + a.name for a in ch.names]
                    found.extend([(n, infunc, ch.lineno) for n in names] if target == "speechface" else [(target, infunc, ch.lineno)])
            elif isinstance(ch, ast.Import):
                found.extend((a.name, infunc, ch.lineno) for a in ch.names if a.name.split(".")[0] == "speechface")
            visit(ch, f)
    visit(tree, False)
    return found


def graph() -> dict:
    "module -> [(imported module, lazy, line)] over the package (exported modules only)."
    mods = notebook_modules()
    g = {}
    for m in mods:
        path = PKG.joinpath(*m.split(".")[1:]).with_suffix(".py")
        g[m] = module_imports(path, m)
    return g


def _owner(name: str, mods: dict):
    "The exported module an import refers to (`speechface.data.mesh.load_templates` -> speechface.data.mesh)."
    while name and name not in mods: name = name.rpartition(".")[0]
    return name or None


def violations() -> list:
    mods, out = notebook_modules(), []
    for m, (num, nb) in mods.items():
        part = m.split(".")[1]
        if part not in DECADES.get(int(num // 10), ()):
            out.append(f"{m} is exported by {nb} (layer {int(num // 10)}x: {LAYER_NAMES.get(int(num // 10), '?')}), "
                       f"but {part!r} modules belong to layer {next((d for d, ps in DECADES.items() if part in ps), '?')}x")
    for m, imps in graph().items():
        num = mods[m][0]
        for target, lazy, line in imps:
            t = _owner(target, mods)
            if t is None: continue                                  # the package itself (__version__)
            if mods[t][0] >= num:
                out.append(f"{m} (notebook {mods[m][1]}) line {line} imports {t} (notebook {mods[t][1]}): imports must point down")
            if lazy and m not in LAZY:
                out.append(f"{m} line {line} imports {t} inside a function; import at module level (or add the module "
                           f"to LAZY in tools/layers.py with the measured reason)")
    return out


def diagram() -> str:
    "The layers top-down: each module with its notebook and what it imports."
    mods, g = notebook_modules(), graph()
    lines = []
    for d in sorted(DECADES, reverse=True):
        lines.append(f"{d}x {LAYER_NAMES[d]}")
        for m, (num, nb) in sorted(mods.items(), key=lambda kv: -kv[1][0]):
            if num // 10 != d: continue
            deps = sorted({_owner(t, mods) for t, _, _ in g[m]} - {None}, key=lambda t: -mods[t][0])
            short = lambda x: x.removeprefix("speechface.")
            lines.append(f"  {nb:28s} {short(m):24s} <- {', '.join(short(t) for t in deps) or '-'}"
                         + ("   (lazy: import cost)" if m in LAZY else ""))
    return "\n".join(lines)


if __name__ == "__main__":
    if "--check" in sys.argv:
        v = violations()
        print("\n".join(v) or "layers: ok")
        sys.exit(1 if v else 0)
    print(diagram())
