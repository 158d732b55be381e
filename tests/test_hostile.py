"""Hostile inputs to every `speechface` command: exit 1 or 2 with one stderr line, no traceback, no hang, no memory
blow-up, no file outside the output folder changed, no payload run. The cases are built in `tests/hostile_cases.py`;
SPEECHFACE_HOSTILE_TABLE=path also writes the results as a markdown table."""
import os, queue, subprocess, sys, time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import hostile_cases as hc

WORKERS = 2


@pytest.fixture(scope="session")
def hostile_ctx(tmp_path_factory):
    "The cached corpora and one tiny actor checkpoint (1 epoch on the tiny corpus, ~5 s), built once per session."
    from speechface.data.synth import cached_corpus
    from speechface.data.beat2_synth import cached_beat2_corpus
    from speechface.data.dyadic import cached_dyadic_corpus
    tmp = tmp_path_factory.mktemp("hostile_ctx")
    tiny = cached_corpus("tiny")
    r = subprocess.run([sys.executable, "-m", "speechface.cli", "train", f"dataset.root={tiny}", f"out_dir={tmp / 'ck'}", "run=tiny",
                        *hc.TINY_MODEL, "--quiet"], capture_output=True, text=True, cwd=tmp)
    assert r.returncode == 0, r.stderr[-2000:]
    (tmp / "bombs").mkdir()
    return hc.Ctx(tiny=Path(tiny), beat2=Path(cached_beat2_corpus("tiny")), dyadic=Path(cached_dyadic_corpus("tiny")),
                  ckpt=tmp / "ck" / "tiny" / "best.pt", bombs=tmp / "bombs")


@pytest.fixture(scope="module")
def hostile_results(hostile_ctx, tmp_path_factory):
    "Every case run once, two at a time; name -> record. Writes the table when SPEECHFACE_HOSTILE_TABLE is set."
    base = tmp_path_factory.mktemp("hostile")
    t0 = time.perf_counter()
    zygotes = queue.Queue()
    for _ in range(WORKERS): zygotes.put(hc.Zygote(hc.case_env()))
    def one(c):
        z = zygotes.get()
        try: return hc.run_case(c, base, hostile_ctx, z)
        finally: zygotes.put(z)
    with ThreadPoolExecutor(WORKERS) as ex: recs = list(ex.map(one, hc.CASES + hc.SUCCESS))
    while not zygotes.empty(): zygotes.get().close()
    wall = time.perf_counter() - t0
    print(f"\n{len(recs)} hostile cases in {wall:.0f} s wall ({sum(r['seconds'] for r in recs):.0f} s of runs, {WORKERS} workers)")
    table = os.environ.get("SPEECHFACE_HOSTILE_TABLE")
    if table:
        hc.write_table([r for r in recs if r["name"] in {c.name for c in hc.CASES}], table)
        ok = [r for r in recs if r["name"] in {c.name for c in hc.SUCCESS}]
        with open(table, "a") as f:
            f.write("\nMust succeed cleanly:\n\n")
            for c, r in zip(hc.SUCCESS, ok): f.write(f"- {c.name}: exit {r['rc']}, {_success_problems(c, r) or 'ok'}\n")
            worst = max(recs, key=lambda r: r["maxrss_mib"])
            f.write(f"\n{len(recs)} cases, {wall:.0f} s wall with {WORKERS} workers; peak RSS of the worst case: "
                    f"{worst['maxrss_mib']:.0f} MiB ({worst['name']}; a forked run counts the zygote's pages it touched).\n")
    return {r["name"]: r for r in recs}


def _success_problems(c, rec) -> list:
    probs = []
    if rec["build_error"]: return [f"builder failed: {rec['build_error'].strip().splitlines()[-1]}"]
    if rec["timeout"] or rec["rc"] != 0: probs.append(f"exit {rec['rc']} (timeout={rec['timeout']}), expected 0")
    if "Traceback" in rec["stderr"]: probs.append("a traceback was printed")
    if rec["changed"]: probs.append(f"files outside the output folder changed: {rec['changed'][:6]}")
    if not probs:
        try: c.check(rec["dir"], rec)
        except AssertionError as e: probs.append(f"check failed: {e}")
    return probs


def test_enough_cases_cover_every_command():
    "At least 85 hostile cases, every command among them, unique names."
    names = [c.name for c in hc.CASES + hc.SUCCESS]
    assert len(hc.CASES) >= 85 and len(set(names)) == len(names)
    assert {c.command for c in hc.CASES} >= {"synth", "check-data", "baselines", "train", "test", "evaluate", "animate", "lipreader"}


@pytest.mark.parametrize("name", [c.name for c in hc.CASES])
def test_hostile_input(hostile_results, name):
    "Exit 1/2, one stderr line without control characters, no traceback, no hang, nothing outside the output changed, no payload run."
    rec = hostile_results[name]
    probs = hc.hostile_problems(rec)
    assert not probs, "; ".join(probs) + "\n" + hc.describe(rec)


@pytest.mark.parametrize("case", hc.SUCCESS, ids=lambda c: c.name)
def test_must_succeed_cleanly(hostile_results, case):
    "Well-formed requests next to leftovers: exit 0, the case's own check, nothing outside the output changed."
    rec = hostile_results[case.name]
    probs = _success_problems(case, rec)
    assert not probs, "; ".join(probs) + "\n" + hc.describe(rec)


def test_tree_state_sees_changes(tmp_path):
    "The sentinel hash notices an edited, an added and a removed file, and never opens a FIFO."
    (tmp_path / "a").write_text("1")
    (tmp_path / "b").write_text("2")
    os.mkfifo(tmp_path / "f")
    (tmp_path / "out").mkdir()
    before = hc.tree_state(tmp_path, ("out",))
    (tmp_path / "a").write_text("x")
    (tmp_path / "b").unlink()
    (tmp_path / "c").write_text("3")
    (tmp_path / "out" / "ok").write_text("")
    assert hc.tree_diff(before, hc.tree_state(tmp_path, ("out",))) == ["+c", "-b", "~a"]
