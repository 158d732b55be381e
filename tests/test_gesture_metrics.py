"""Bad inputs to the gesture metrics that the lessons in nbs/23a_metrics.gesture.ipynb do not try: wrong shapes, NaN, a
zero fps or sigma (the lessons already cover too few frames, stereo and too-short audio, empty beats and mismatched widths)."""
import numpy as np, pytest
from speechface.metrics.gesture import motion_beats, joint_speed, audio_onsets, beat_alignment, frechet_distance

def test_motion_beats_bad_inputs():
    with pytest.raises(ValueError, match=r"\(T, J, 3\)"): motion_beats(np.zeros((30, 55)), 30)
    with pytest.raises(ValueError, match="at least 2 frames"): joint_speed(np.zeros((1, 55, 3)), 30)
    p = np.zeros((40, 55, 3))
    p[5, 3, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"): motion_beats(p, 30)
    with pytest.raises(ValueError, match="fps"): joint_speed(np.zeros((40, 55, 3)), 0)

def test_audio_onsets_bad_inputs():
    w = np.zeros(16000)
    w[10] = np.nan
    with pytest.raises(ValueError, match="NaN"): audio_onsets(w, 16000)

def test_beat_alignment_bad_inputs():
    with pytest.raises(ValueError, match="non-empty"): beat_alignment(np.zeros((2, 2)), [1.0])
    with pytest.raises(ValueError, match="NaN"): beat_alignment([np.nan], [1.0])
    with pytest.raises(ValueError, match="NaN"): beat_alignment([1.0], [np.nan])
    with pytest.raises(ValueError, match="sigma"): beat_alignment([1.0], [1.0], sigma=0)

def test_frechet_bad_inputs():
    x = np.random.default_rng(0).standard_normal((20, 4))
    with pytest.raises(ValueError, match=r"\(N, D\)"): frechet_distance(x[:, 0], x[:, 0])
    y = x.copy()
    y[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"): frechet_distance(x, y)
