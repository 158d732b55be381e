"""`speechface` commands as fresh processes forked from a "zygote" that imported speechface (and torch) once: a run then
costs its own work instead of a 3-5 s interpreter start. The child gets its own session (killable as a group), stdin
from /dev/null, stdout/stderr to files, an address-space limit of what the zygote maps plus `AS_HEADROOM`, the caller's
environment, and runs `speechface.cli.main(argv)` exactly as the console script does (an uncaught exception prints its
traceback and exits 1). Used by the hostile-input tests, which start hundreds of short commands."""
from __future__ import annotations
import json, os, subprocess, sys, tempfile, threading
from pathlib import Path

AS_HEADROOM = 2 * 2**30     # address space a run may add to what the zygote already maps (normal runs here add < 1.5 GiB)
PRELOAD = ("speechface.cli", "speechface.pipeline", "speechface.data.check", "speechface.evaluation.evaluate",
           "speechface.evaluation.baselines", "speechface.train.coefficients", "speechface.train.coefficient_rl",
           "speechface.train.reaction", "speechface.data.synth", "speechface.data.dyadic", "speechface.data.beat2_synth")

ZYGOTE = r'''
import importlib, json, os, resource, signal, sys, time, traceback
for m in sys.argv[2:]: importlib.import_module(m)
from speechface.cli import main
headroom = int(sys.argv[1])
def vm_size():
    with open("/proc/self/status") as f: return next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmSize:"))
def child(req):
    os.setsid(); os.chdir(req["cwd"])
    for fd, path, flags in ((0, os.devnull, os.O_RDONLY), (1, req["out"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
                            (2, req["err"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)):
        f = os.open(path, flags, 0o644); os.dup2(f, fd); os.close(f)
    os.environ.clear(); os.environ.update(req["env"])
    lim = vm_size() + headroom; resource.setrlimit(resource.RLIMIT_AS, (lim, lim))
    sys.argv = ["speechface", *req["argv"]]
    try: rc = main(req["argv"])
    except SystemExit as e: rc = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException: traceback.print_exc(); rc = 1
    for s in (sys.stdout, sys.stderr):
        try: s.flush()
        except BaseException: pass
    os._exit(rc if isinstance(rc, int) else 0)
print("ready", flush=True)
for line in sys.stdin:
    req = json.loads(line); t0 = time.perf_counter(); pid = os.fork()
    if pid == 0: child(req)
    timeout = False
    while True:
        p, status, ru = os.wait4(pid, os.WNOHANG)
        if p: break
        if time.perf_counter() - t0 > req["timeout"]:
            timeout = True
            try: os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError: pass
            p, status, ru = os.wait4(pid, 0); break
        time.sleep(0.02)
    rc = os.waitstatus_to_exitcode(status)
    print(json.dumps({"rc": rc, "timeout": timeout, "seconds": time.perf_counter() - t0, "maxrss_mib": ru.ru_maxrss / 1024}), flush=True)
'''


class Zygote:
    "A process that imported speechface once and forks one child per command (see the module's docstring)."
    def __init__(self, env: dict | None = None):
        self.p = subprocess.Popen([sys.executable, "-c", ZYGOTE, str(AS_HEADROOM), *PRELOAD], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})
        assert self.p.stdout.readline().strip() == "ready", "the zygote could not import speechface"

    def run(self, argv: list, cwd: str | Path, out: str | Path, err: str | Path, env: dict, timeout: float) -> dict:
        "Fork one `speechface ARGV` with stdout/stderr to the files `out`/`err`: {rc, timeout, seconds, maxrss_mib}."
        req = {"argv": [str(a) for a in argv], "cwd": str(cwd), "out": str(out), "err": str(err), "env": env, "timeout": timeout}
        self.p.stdin.write(json.dumps(req) + "\n")
        self.p.stdin.flush()
        return json.loads(self.p.stdout.readline())

    def close(self):
        self.p.stdin.close()
        self.p.wait(timeout=30)


_shared, _lock = None, threading.Lock()

def run_cli(*args, cwd: str | Path | None = None, env: dict | None = None, timeout: float = 60,
            ) -> subprocess.CompletedProcess:
    "`speechface ARGS` forked from a zygote: what `subprocess.run(..., capture_output=True, text=True)` returns; TimeoutExpired on a hang."
    global _shared
    with _lock:
        if _shared is None: _shared = Zygote()
        with tempfile.TemporaryDirectory() as d:
            out, err = Path(d) / "out", Path(d) / "err"
            r = _shared.run(list(args), cwd or os.getcwd(), out, err, {**os.environ, **(env or {})}, timeout)
            stdout, stderr = (p.read_bytes().decode("utf-8", "replace") for p in (out, err))
    argv = ["speechface", *map(str, args)]
    if r["timeout"]: raise subprocess.TimeoutExpired(argv, timeout, stdout, stderr)
    return subprocess.CompletedProcess(argv, r["rc"], stdout, stderr)
