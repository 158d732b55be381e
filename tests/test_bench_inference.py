"""The inference benchmark script runs end to end at toy sizes and prints tables plus parseable JSON rows."""
import json, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_bench_inference_script_tiny():
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_inference.py"), "--tiny", "--threads", "1",
                        "--frames", "12", "40", "--seconds", "1", "--max-recompute-s", "0.001"],
                       capture_output=True, text=True, timeout=300, env={**__import__("os").environ, "HF_HUB_OFFLINE": "1"})
    assert r.returncode == 0, r.stderr[-3000:]
    rows = [json.loads(l) for l in r.stdout.splitlines() if l.startswith("{")]
    dec = [x for x in rows if x["bench"] == "decoding"]
    anim = [x for x in rows if x["bench"] == "animate"]
    assert [x["frames"] for x in dec] == [12, 40] and [x["dataset"] for x in anim] == ["vocaset", "biwi"]
    assert not dec[0]["recompute_extrapolated"] and dec[1]["recompute_extrapolated"]   # over budget: a prefix, extrapolated
    assert dec[1]["recompute_steps_timed"] < 40 and "extrapolated from" in r.stdout
    assert all(x["speedup"] == x["recompute_s"] / x["cached_s"] for x in dec)
    assert all(x["encoder_s"] > 0 and x["decoder_s"] > 0 and x["predict_s"] > 0 for x in anim)
    assert "| T | cached (s) | recompute (s) | speed-up ×" in r.stdout and "## End-to-end predict" in r.stdout


def test_cuda_device_refused_clearly_without_gpu():
    import pytest, torch
    if torch.cuda.is_available(): pytest.skip("a GPU is present")
    from speechface.bench import run_inference_benchmark
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        run_inference_benchmark(device="cuda", only="decoding", tiny=True)
