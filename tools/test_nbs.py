"""Run every notebook under nbs/ as a test (nbdev's `test_nb`), in parallel, and print a per-notebook table.

Usage: python tools/test_nbs.py [--flags slow] [--workers 2] [NOTEBOOK ...]
Writes `passed failed` counts to the file named by --counts (read by .ci/run). Report notebooks (`9x_report.*`) run
too, but their asserts check the write-up against committed results, not the code: they are listed apart and their
passes are not counted as tests (a failure still fails the run).
"""
import argparse, os, shutil, subprocess, sys, tempfile, time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_CHILD = """import sys
from pathlib import Path
from nbdev.test import test_nb
ok, _ = test_nb(Path(sys.argv[1]), skip_flags=sys.argv[2].split(), force_flags=sys.argv[3].split(), basepath=Path(sys.argv[4]))
sys.exit(0 if ok else 1)
"""

def _run(fn: str, skip: list, force: list):
    "Run one notebook in a fresh interpreter (isolates state, memory and multiprocessing start methods)."
    t0 = time.time()
    # Each notebook gets its own temporary folder, removed when it ends: notebooks write scratch corpora, videos and
    # checkpoints with tempfile.mkdtemp(), and a full run would otherwise leave gigabytes behind in /tmp.
    tmp = tempfile.mkdtemp(prefix=f"nb-{Path(fn).stem}-")
    env = {**os.environ, "MPLBACKEND": "Agg", "TMPDIR": tmp}
    try:
        r = subprocess.run([sys.executable, "-c", _CHILD, fn, " ".join(skip), " ".join(force), str(ROOT)],
                           capture_output=True, text=True, env=env, cwd=ROOT)
    finally: shutil.rmtree(tmp, ignore_errors=True)
    if r.returncode: sys.stderr.write(f"--- {fn}\n{r.stdout[-3000:]}{r.stderr[-6000:]}\n")
    return fn, r.returncode == 0, time.time() - t0

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
    with ThreadPoolExecutor(a.workers) as ex:
        for fn, ok, dt in ex.map(_run, nbs, [skip] * len(nbs), [force] * len(nbs)):
            results.append((fn, ok, dt))
            name = os.path.relpath(fn, ROOT) if Path(fn).is_relative_to(ROOT) else fn
            print(f"{'PASS' if ok else 'FAIL'}  {dt:7.1f}s  {name}", flush=True)
    is_report = lambda fn: Path(fn).name[:1] == "9" and "_report." in Path(fn).name
    lessons = [ok for fn, ok, _ in results if not is_report(fn)]
    reports = [ok for fn, ok, _ in results if is_report(fn)]
    passed, failed = sum(lessons), len(lessons) - sum(lessons)
    print(f"notebooks: {passed} passed, {failed} failed; write-up checks of {len(reports)} reports: "
          f"{sum(reports)} passed, {len(reports) - sum(reports)} failed (not counted as tests)")
    failed_all = failed + len(reports) - sum(reports)
    if a.counts: Path(a.counts).write_text(f"{passed} {failed_all}\n")
    sys.exit(1 if failed_all else 0)

if __name__ == "__main__": main()
