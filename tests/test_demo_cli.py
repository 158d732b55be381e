"""`speechface demo --quick` as a user runs it from a fresh clone: the whole pipeline, its table and its video."""
import json, subprocess, time
import pandas as pd, numpy as np


def test_demo_quick(tmp_path):
    t0 = time.time()
    r = subprocess.run(["speechface", "demo", "--quick", "--out", str(tmp_path / "d"), "--threads", "1", "--quiet"],
                       capture_output=True, text=True)
    wall = time.time() - t0
    assert r.returncode == 0, f"rc={r.returncode}\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}"
    out = tmp_path / "d"
    tab = pd.read_csv(out / "results.csv", index_col=0)
    assert list(tab.index) == ["ground truth", "static template", "SFT", "RL (reward backprop)"]
    assert np.isfinite(tab[["LVE (×1e-5)", "closure acc", "LSE-D", "LSE-C"]].to_numpy()).all()
    assert tab.loc["SFT", "LVE (×1e-5)"] > 0 and tab.loc["ground truth", "LVE (×1e-5)"] == 0
    # the perceptual measures, with intervals; ground truth is their ceiling
    assert tab.loc["ground truth", "closure F1"] == 1 and tab.loc["ground truth", "MTM (ms)"] == 0
    assert tab.loc["static template", "events detected"] == 0
    for m in ("SFT", "RL (reward backprop)"):
        lo, hi = map(float, tab.loc[m, "closure F1 CI"].split("–"))
        assert lo <= tab.loc[m, "closure F1"] <= hi and 0 <= tab.loc[m, "lip-read acc"] <= 1
    assert "the reward family's" in (out / "results.md").read_text()     # the expert columns are labelled as such
    steps = json.loads((out / "timings.json").read_text())
    assert set(steps) >= {"corpus", "sft", "sync expert", "evaluation expert", "score head", "lip-reader", "rl", "evaluation", "video", "total"}
    from speechface.viz.video import video_info
    info = video_info(out / "comparison.mp4")
    assert info["audio_codec"] and info["width"] == 3 * 128 and info["n_frames"] > 10
    assert wall < 600, f"speechface demo --quick took {wall:.0f} s"
    print(f"speechface demo --quick: {wall:.0f} s, steps {steps}")
