"""Run every notebook under nbs/ as a test (nbdev's `test_nb`), in parallel, and print a per-notebook table.

Usage: python tools/test_nbs.py [--flags slow] [--workers 2] [NOTEBOOK ...]
Writes `passed failed` counts to the file named by --counts (read by .ci/run).
"""
import argparse, sys, time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

def _run(fn: str, skip: list, force: list):
    import os
    os.environ.setdefault("MPLBACKEND", "Agg")
    from nbdev.test import test_nb
    t0 = time.time()
    ok, _ = test_nb(Path(fn), skip_flags=skip, force_flags=force, basepath=ROOT)
    return fn, ok, time.time() - t0

def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("notebooks", nargs="*", help="notebooks to run (default: all under nbs/ not starting with _)")
    p.add_argument("--flags", default="", help="space-separated tst_flags to run as well (e.g. 'slow')")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--counts", default=None, help="file to write 'passed failed' into")
    a = p.parse_args()
    all_flags = ["notest", "slow"]
    force = a.flags.split()
    skip = [f for f in all_flags if f not in force]
    nbs = [str(Path(n).resolve()) for n in a.notebooks] or sorted(
        str(f) for f in (ROOT / "nbs").rglob("*.ipynb")
        if not any(part.startswith(("_", ".")) for part in f.relative_to(ROOT / "nbs").parts))
    results = []
    with ProcessPoolExecutor(a.workers) as ex:
        for fn, ok, dt in ex.map(_run, nbs, [skip] * len(nbs), [force] * len(nbs)):
            results.append((fn, ok, dt))
            print(f"{'PASS' if ok else 'FAIL'}  {dt:7.1f}s  {Path(fn).relative_to(ROOT)}", flush=True)
    passed = sum(ok for _, ok, _ in results); failed = len(results) - passed
    print(f"notebooks: {passed} passed, {failed} failed")
    if a.counts: Path(a.counts).write_text(f"{passed} {failed}\n")
    sys.exit(1 if failed else 0)

if __name__ == "__main__": main()
