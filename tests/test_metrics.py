"""Edge cases and hand-computed values for `speechface.metrics.mesh` and `speechface.metrics.react`."""
import warnings

import numpy as np
import pytest
import torch

from speechface.metrics.mesh import (bilabial_closure_accuracy, dynamics_stats, face_dynamics_deviation,
                                     in_paper_units, lip_sync_offset, lip_vertex_error, mean_vertex_error,
                                     mouth_opening_correlation, paired_sequences, upper_face_dynamics)
from speechface.metrics.react import (ccc, ccc_matrix, dtw_distance, dtw_reference, frc, frd, frdiv, frdvs, frsyn,
                                      frvar, gt_baseline, lagged_correlation, mean_frame_baseline,
                                      mean_sequence_baseline, mime_baseline, random_baseline, tlcc_offsets)

# ---------------------------------------------------------------- mesh: LVE / FDD / MVE
GT2 = np.array([[[1., 0, 0], [0, 2, 0]], [[1, 1, 0], [0, 0, 1]]])  # (T=2, V=2, 3), squared errors vs 0: (1, 4), (2, 1)


def test_lve_by_hand():
    assert lip_vertex_error(np.zeros((2, 2, 3)), GT2, [0, 1]) == pytest.approx(3.0)  # (max(1,4) + max(2,1)) / 2
    assert lip_vertex_error(np.zeros((2, 2, 3)), GT2, [1]) == pytest.approx(2.5)     # (4 + 1) / 2


def test_lve_flat_layout_and_torch_input():
    pred = torch.zeros(2, 6, requires_grad=True)
    assert lip_vertex_error(pred, GT2.reshape(2, 6), np.array([0, 1])) == pytest.approx(3.0)


def test_lve_longer_prediction_is_truncated():
    pred = np.concatenate([np.zeros((2, 2, 3)), np.full((5, 2, 3), 100.0)])  # 5 extra frames of garbage
    assert lip_vertex_error(pred, GT2, [0, 1]) == pytest.approx(3.0)


def test_lve_shorter_prediction_is_an_error_naming_both_lengths():
    with pytest.raises(ValueError, match="1 frames but the ground truth has 2"):
        lip_vertex_error(np.zeros((1, 2, 3)), GT2, [0, 1])


def test_lve_pools_frames_not_sequence_means():
    preds = [np.zeros((1, 1, 3)), np.zeros((3, 1, 3))]
    gts = [np.array([[[2., 0, 0]]]), np.zeros((3, 1, 3))]
    assert lip_vertex_error(preds, gts, [0]) == pytest.approx(1.0)  # 4 / 4 frames, not (4 + 0) / 2


def test_lve_bad_inputs():
    with pytest.raises(ValueError, match="mesh has 2 vertices"): lip_vertex_error(GT2, GT2, [5])
    with pytest.raises(ValueError, match="non-empty"): lip_vertex_error(GT2, GT2, [])
    with pytest.raises(ValueError, match="2 predictions for 1"): paired_sequences([GT2, GT2], [GT2])
    with pytest.raises(ValueError, match="vertices"): lip_vertex_error(np.zeros((2, 3, 3)), GT2, [0])
    with pytest.raises(ValueError, match=r"\(T, 3V\)"): lip_vertex_error(np.zeros((2, 4)), np.zeros((2, 4)), [0])


def test_paper_units():
    assert in_paper_units(4.109e-5, "vocaset") == pytest.approx(4.109)
    assert in_paper_units(4.7e-4, "BIWI") == pytest.approx(4.7)
    with pytest.raises(ValueError, match="unknown dataset"): in_paper_units(1.0, "beat2")


def test_fdd_sign_and_abs():
    tpl = np.zeros((1, 3))
    moving = np.array([[[0., 0, 0]], [[1, 0, 0]]])  # squared displacement 0, 1 -> population std 0.5
    static = np.zeros((2, 1, 3))
    assert upper_face_dynamics(moving, tpl, [0]) == pytest.approx(0.5)  # ddof=0 (ddof=1 would give 0.707)
    r = face_dynamics_deviation(static, moving, tpl, [0])
    assert r.fdd == pytest.approx(0.5) and r.fdd > 0  # stiffer prediction -> positive FDD
    r = face_dynamics_deviation(moving, static, tpl, [0])
    assert r.fdd == pytest.approx(-0.5) and r.fdd_abs == pytest.approx(0.5)
    r = face_dynamics_deviation([static, moving], [moving, static], tpl, [0])
    assert r.fdd == pytest.approx(0.0) and r.fdd_abs == pytest.approx(0.5)


def test_fdd_one_frame_and_constant():
    tpl = np.zeros((2, 3))
    one = np.ones((1, 2, 3))
    assert face_dynamics_deviation(one, one * 5, tpl, [0, 1]).fdd == 0.0  # std of one frame = 0
    const = np.ones((10, 2, 3))
    assert upper_face_dynamics(const, tpl, [0, 1]) == 0.0


def test_mve_by_hand():
    assert mean_vertex_error(np.zeros((2, 2, 3)), GT2) == pytest.approx((1 + 2 + 2 ** .5 + 1) / 4)
    assert mean_vertex_error(GT2, GT2) == 0.0


# ---------------------------------------------------------------- mesh: perceptual
def test_closure_tolerance_and_thresholds():
    curve = np.ones(12); curve[5] = 0.0
    segs = [(0.52, 0.58), (0.61, 0.69), (0.9, 1.0)]
    assert bilabial_closure_accuracy(curve, segs, 10, threshold=0.5, tolerance=0).closed.tolist() == [True, False, False]
    r = bilabial_closure_accuracy(curve, segs, 10, threshold=0.5, tolerance=1)
    assert r.closed.tolist() == [True, True, False] and r.accuracy == pytest.approx(2 / 3)
    r = bilabial_closure_accuracy(curve, segs, 10, lip_dist_gt=np.full(12, 2.0), rel_threshold=0.25)
    assert r.threshold == pytest.approx(0.5)


def test_closure_errors_and_empty():
    curve = np.ones(12)
    with pytest.raises(ValueError, match="lip_dist_gt"): bilabial_closure_accuracy(curve, [(0.1, 0.2)], 10)
    with pytest.raises(ValueError, match="outside"): bilabial_closure_accuracy(curve, [(3.0, 3.1)], 10, threshold=1)
    with pytest.raises(ValueError, match="end >= start"): bilabial_closure_accuracy(curve, [(0.3, 0.2)], 10, threshold=1)
    with pytest.raises(ValueError, match="2 frames"):
        bilabial_closure_accuracy(curve[:2], [(0.0, 0.1)], 10, lip_dist_gt=curve[:3])
    r = bilabial_closure_accuracy(curve, [], 10, threshold=1)
    assert r.n_segments == 0 and np.isnan(r.accuracy)


def test_opening_correlation_never_nan():
    x = np.sin(np.linspace(0, 6, 40))
    assert mouth_opening_correlation(3 * x + 2, x).r == pytest.approx(1.0)
    for a, b in [(np.zeros(40), x), (x, np.full(40, 0.01)), (np.zeros(1), np.zeros(1))]:
        r = mouth_opening_correlation(a, b)
        assert r.r == 0.0 and r.defined is False


def test_dynamics_by_hand_and_oversmoothing():
    par = np.array([0., 1, 4])  # speeds 10, 30 at 10 fps; acceleration 200
    s = dynamics_stats(par, par, fps=10)
    assert (s["speed_gt"], s["acc_gt"], s["speed_ratio"]) == pytest.approx((20.0, 200.0, 1.0))
    t = np.arange(200) / 30
    gt = np.abs(np.sin(2 * np.pi * 3 * t))
    smooth = np.convolve(np.pad(gt, 3, mode="edge"), np.ones(7) / 7, mode="valid")
    assert dynamics_stats(smooth, gt, fps=30)["speed_ratio"] < 0.8
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(RuntimeWarning, match="undefined"): dynamics_stats(par, np.zeros(3), fps=10)
    with pytest.raises(ValueError, match="at least 3 frames"): dynamics_stats(par[:2], par[:2], fps=10)


def test_lip_sync_offset_recovers_planted_lag():
    rng = np.random.default_rng(3)
    env = np.convolve(rng.random(300), np.ones(4) / 4, mode="same")
    for lag in (-7, 0, 5):
        mesh = np.roll(env, lag)[:, None]            # mesh[t] = env[t - lag]: mesh late by `lag`
        score = lambda m, a: ((m[..., 0] - a[..., 0]) ** 2).mean(-1)
        r = lip_sync_offset(score, mesh, env[:, None], max_offset=15)
        assert r.offset == lag and r.dist_min <= r.dist_zero and r.confidence > 0
        assert len(r.distances) == 31
    with pytest.raises(ValueError, match="too short"): lip_sync_offset(score, mesh[:20], env[:20, None])


# ---------------------------------------------------------------- react
def test_ccc_identical_constant_and_reference_quirks():
    x = np.random.default_rng(0).normal(size=(200, 4))
    x -= x.mean(0)                                             # zero mean, so that -x is perfectly discordant
    assert ccc(x, x) == pytest.approx(1.0, abs=1e-7)
    assert ccc(np.ones((50, 2)), np.ones((50, 2))) == 0.0      # constant: defined value 0 (baseline's nan_to_num)
    assert ccc(np.ones(50), np.arange(50.0)) == 0.0
    assert ccc(x, -x) == pytest.approx(-1.0, abs=1e-7)
    assert ccc_matrix(x[None], np.stack([x, -x])).shape == (1, 2)


def test_ccc_matches_lin_formula():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=100), 0.5 * rng.normal(size=100) + 0.3
    rho = np.corrcoef(a, b)[0, 1]
    expected = 2 * rho * a.std() * b.std() / (a.var() + b.var() + (a.mean() - b.mean()) ** 2 + 1e-8)
    assert ccc(a, b) == pytest.approx(expected, rel=1e-9)


def test_frc_sum_over_samples_and_gt_quirk():
    rng = np.random.default_rng(2)
    listener = rng.random((3, 50, 25)); listener[:, :, :5] = 0          # 5 of 25 dims constant
    appropriate = np.eye(3, dtype=bool)
    assert frc(gt_baseline(listener), listener, appropriate) == pytest.approx(10 * 20 / 25, abs=1e-5)  # 8, not 10
    with pytest.raises(ValueError, match="no appropriate listener"): frc(gt_baseline(listener), listener, np.zeros((3, 3)))
    with pytest.raises(ValueError, match=r"\(3, 3\)"): frc(gt_baseline(listener), listener, np.eye(2))


def test_dtw_matches_reference():
    rng = np.random.default_rng(3)
    for t1, t2, d in [(10, 10, 1), (13, 21, 2), (30, 17, 15)]:
        a, b = rng.random((t1, d)).astype(np.float32), rng.random((t2, d)).astype(np.float32)
        assert dtw_distance(a, b) == pytest.approx(dtw_reference(a, b), rel=1e-6)
    assert dtw_reference([0., 0], [1., 1, 1]) == pytest.approx(3 ** .5)
    assert dtw_reference([1., 2, 3], [1., 2, 2, 2, 3]) == 0.0


def test_dtaidistance_runs_in_c():
    from dtaidistance import dtw
    assert dtw.try_import_c(verbose=False)


def test_frd_weights_and_gt_zero():
    rng = np.random.default_rng(4)
    listener = rng.random((2, 8, 25))
    pred = np.stack([listener[1], listener[1]])[None]                  # speaker 0's samples copy listener 1
    pred = np.concatenate([pred, pred])                                # (2, 2, 8, 25)
    expected = sum(w * dtw_reference(listener[1][:, sl], listener[0][:, sl]) for sl, w in
                   [(slice(0, 15), 1 / 15), (slice(15, 17), 1.0), (slice(17, 25), 1 / 8)])
    assert frd(pred, listener, np.array([[1, 0], [0, 1]])) == pytest.approx(expected, rel=1e-5)  # (2 samples * DTW + 0) / 2 speakers
    assert frd(pred, listener, np.array([[1, 1], [0, 1]])) == pytest.approx(0.0, abs=1e-9)  # min picks listener 1
    assert frd(gt_baseline(listener, 3), listener, np.eye(2)) == 0.0


def test_diversity_metrics_by_hand():
    p = np.zeros((2, 2, 1, 1)); p[0, 1] = 2.0                         # speaker 0 samples 0, 2; speaker 1 samples 0, 0
    assert frdiv(p) == pytest.approx((2 * 4 / 2 + 0) / 2)             # ordered pairs: 2 * 4 / (2*1*1*1), then mean
    assert frdvs(p) == pytest.approx((0 + 2 * 4 / 2) / 2)             # sample 0: 0; sample 1: 2*4/(2*1)
    assert frdiv(p[:, :1]) == 0.0
    with pytest.raises(ValueError, match="at least 2 speakers"): frdvs(p[:1])
    q = np.zeros((1, 1, 3, 1)); q[0, 0, :, 0] = [0, 1, 2]
    assert frvar(q) == pytest.approx(1.0)                             # unbiased variance of 0, 1, 2


def test_tlcc_quirks():
    rng = np.random.default_rng(5)
    sp = rng.random((1, 300, 3))
    lag = 7
    listener = np.concatenate([rng.random((1, lag, 3)), sp[:, :-lag]], 1)  # listener[t] = speaker[t - lag]
    assert tlcc_offsets(listener, sp, 49)[0] == -lag                   # baseline's sign: offset = -lag at the peak
    listener_c = listener.copy(); listener_c[..., 0] = 0                # one constant dim
    assert tlcc_offsets(listener_c, sp, 49)[0] == 49                    # NaN at every lag -> first lag wins
    assert tlcc_offsets(listener_c, sp, 49, constant_dims="skip")[0] == -lag
    assert np.isnan(lagged_correlation(listener_c, sp, 5)).all()
    pred = np.concatenate([listener[:, None], rng.random((1, 9, 300, 3))], 1)  # only sample 0 is in sync
    assert frsyn(pred, sp) == lag                                       # baseline: sample 0 only
    assert frsyn(pred, sp, all_samples=True) > lag
    with pytest.raises(ValueError, match="constant_dims"): frsyn(pred, sp, constant_dims="zero")


def test_baselines_shapes():
    sp, li = np.zeros((4, 20, 25), np.float32), np.ones((4, 20, 25), np.float32)
    assert gt_baseline(li).shape == (4, 10, 20, 25) and mime_baseline(sp, 3).shape == (4, 3, 20, 25)
    r = random_baseline(4, 10, 20, seed=1)
    assert r.shape == (4, 10, 20, 25) and r.dtype == np.float32 and 0 <= r.min() and r.max() < 1
    assert np.array_equal(r, random_baseline(4, 10, 20, seed=1))
    train = np.stack([np.zeros((20, 25)), 2 * np.ones((20, 25))])
    assert np.allclose(mean_sequence_baseline(train, 4), 1.0) and mean_frame_baseline(train, 4, 2).shape == (4, 2, 20, 25)
