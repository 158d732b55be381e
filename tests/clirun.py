"The `speechface` command as the tests call it: a subprocess with captured output."
import os, subprocess


def run(*args, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
    "Run `speechface ARGS...`; with `check`, a non-zero exit fails the test with the command's output tails."
    r = subprocess.run(["speechface", *map(str, args)], capture_output=True, text=True, env={**os.environ, **(env or {})})
    if check and r.returncode: raise AssertionError(f"{args}: rc={r.returncode}\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}")
    return r
