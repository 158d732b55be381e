"""The inference benchmark script runs end to end at toy sizes and prints tables plus parseable JSON rows."""
import json, subprocess, sys
import pytest
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
    assert all(x["encoder_s"] > 0 and x["decoder_s"] > 0 and x["predict_s"] > 0 for x in anim)
    assert "| T | cached (s) | recompute (s) | speed-up ×" in r.stdout and "## End-to-end predict" in r.stdout


def test_decoding_speedup_from_planted_costs(monkeypatch, capsys):
    """With a fake clock on which cached decoding costs 1 ms per frame and full recomputation 0.1 ms·n², the table must
    report those costs: speed-up 0.1·T, and the over-budget length extrapolated from the longest affordable prefix."""
    from types import SimpleNamespace
    from speechface import bench
    from speechface.models.faceformer import FaceFormer
    clock = [0.0]
    monkeypatch.setattr(bench, "time", SimpleNamespace(perf_counter=lambda: clock[0]))
    forward = FaceFormer.forward
    def costly(self, *a, **k):                                          # each decode advances the fake clock by its planted cost
        n = k["n_frames"]
        clock[0] += 1e-3 * n if k["mode"] == "autoregressive" else 1e-4 * n ** 2
        return forward(self, *a, **k)
    monkeypatch.setattr(FaceFormer, "forward", costly)
    bench.run_inference_benchmark(only="decoding", tiny=True, frames=[20, 40, 120], max_recompute_s=0.5, repeats=1)
    out = capsys.readouterr().out
    dec = [json.loads(l) for l in out.splitlines() if l.startswith("{")]
    assert [x["frames"] for x in dec] == [20, 40, 120]
    assert [x["cached_s"] for x in dec] == pytest.approx([0.02, 0.04, 0.12])
    assert [x["recompute_s"] for x in dec] == pytest.approx([0.04, 0.16, 1.44])      # 120 frames: the n² fit, exactly
    assert [x["speedup"] for x in dec] == pytest.approx([2, 4, 12])
    assert [x["recompute_extrapolated"] for x in dec] == [False, False, True]
    assert dec[2]["recompute_steps_timed"] == 70                                     # 0.1 ms·70² = 0.49 s ≤ 0.5 s < 0.1 ms·71²
    assert "| 120 | 0.12 | 1.44 | 12 | extrapolated from 70 steps" in out


def test_cuda_device_refused_clearly_without_gpu():
    import pytest, torch
    if torch.cuda.is_available(): pytest.skip("a GPU is present")
    from speechface.bench import run_inference_benchmark
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        run_inference_benchmark(device="cuda", only="decoding", tiny=True)
