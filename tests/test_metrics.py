"""Edge cases and hand-computed values for `speechface.metrics.mesh` and `speechface.metrics.react` that the lessons in
nbs/20_metrics.mesh.ipynb and nbs/21_metrics.react.ipynb do not already check (those run as tests too)."""
import numpy as np
import pytest
import torch

from speechface.metrics.mesh import (bilabial_closure_accuracy, face_dynamics_deviation, in_paper_units, lip_sync_offset,
                                     lip_vertex_error, mouth_opening_correlation, paired_sequences, upper_face_dynamics)
from speechface.metrics.react import (ccc, ccc_matrix, dtw_distance, dtw_reference, frc, frd, frdiv, frdvs, frsyn,
                                      frvar, gt_baseline, lagged_correlation, mean_frame_baseline,
                                      mean_sequence_baseline, mime_baseline, random_baseline, tlcc_offsets)

# ---------------------------------------------------------------- mesh: LVE / FDD / MVE
GT2 = np.array([[[1., 0, 0], [0, 2, 0]], [[1, 1, 0], [0, 0, 1]]])  # (T=2, V=2, 3), squared errors vs 0: (1, 4), (2, 1)


def test_lve_torch_input_with_grad():
    pred = torch.zeros(2, 6, requires_grad=True)                      # a model's output, still attached to the graph
    assert lip_vertex_error(pred, GT2.reshape(2, 6), np.array([0, 1])) == pytest.approx(3.0)


def test_lve_cuts_the_prediction_at_its_end():
    pred = np.concatenate([np.zeros((2, 2, 3)), np.full((5, 2, 3), 100.0)])  # 5 extra frames of garbage at the end
    assert lip_vertex_error(pred, GT2, [0, 1]) == pytest.approx(3.0)


def test_lve_bad_inputs():
    with pytest.raises(ValueError, match="non-empty"): lip_vertex_error(GT2, GT2, [])
    with pytest.raises(ValueError, match="2 predictions for 1"): paired_sequences([GT2, GT2], [GT2])
    with pytest.raises(ValueError, match="vertices"): lip_vertex_error(np.zeros((2, 3, 3)), GT2, [0])


def test_paper_units_biwi_and_unknown():
    assert in_paper_units(4.7e-4, "BIWI") == pytest.approx(4.7)
    with pytest.raises(ValueError, match="unknown dataset"): in_paper_units(1.0, "beat2")


def test_fdd_livelier_prediction_is_negative():
    tpl = np.zeros((1, 3))
    moving = np.array([[[0., 0, 0]], [[1, 0, 0]]])  # squared displacement 0, 1 -> population std 0.5
    r = face_dynamics_deviation(moving, np.zeros((2, 1, 3)), tpl, [0])
    assert r.fdd == pytest.approx(-0.5) and r.fdd_abs == pytest.approx(0.5)


def test_fdd_constant_displacement():
    assert upper_face_dynamics(np.ones((10, 2, 3)), np.zeros((2, 3)), [0, 1]) == 0.0   # displaced but still: std 0


# ---------------------------------------------------------------- mesh: perceptual
def test_closure_relative_threshold():
    r = bilabial_closure_accuracy(np.ones(12), [(0.52, 0.58)], 10, lip_dist_gt=np.full(12, 2.0), rel_threshold=0.25)
    assert r.threshold == pytest.approx(0.5)


def test_closure_errors_and_empty():
    curve = np.ones(12)
    with pytest.raises(ValueError, match="end >= start"): bilabial_closure_accuracy(curve, [(0.3, 0.2)], 10, threshold=1)
    with pytest.raises(ValueError, match="2 frames"):
        bilabial_closure_accuracy(curve[:2], [(0.0, 0.1)], 10, lip_dist_gt=curve[:3])
    assert np.isnan(bilabial_closure_accuracy(curve, [], 10, threshold=1).accuracy)


def test_opening_correlation_one_frame():
    r = mouth_opening_correlation(np.zeros(1), np.zeros(1))
    assert r.r == 0.0 and r.defined is False


def test_lip_sync_offset_recovers_planted_lag_of_either_sign():
    rng = np.random.default_rng(3)
    env = np.convolve(rng.random(300), np.ones(4) / 4, mode="same")
    score = lambda m, a: ((m[..., 0] - a[..., 0]) ** 2).mean(-1)
    for lag in (-7, 0, 5):
        mesh = np.roll(env, lag)[:, None]            # mesh[t] = env[t - lag]: mesh late by `lag`
        r = lip_sync_offset(score, mesh, env[:, None], max_offset=15)
        assert r.offset == lag and r.dist_min <= r.dist_zero and r.confidence > 0
        assert len(r.distances) == 31


# ---------------------------------------------------------------- react
def test_ccc_identical_constant_and_reference_quirks():
    x = np.random.default_rng(0).normal(size=(200, 4))
    x -= x.mean(0)                                             # zero mean, so that -x is perfectly discordant
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
    listener = rng.random((3, 50, 25))
    listener[:, :, :5] = 0          # 5 of 25 dims constant
    appropriate = np.eye(3, dtype=bool)
    assert frc(gt_baseline(listener), listener, appropriate) == pytest.approx(10 * 20 / 25, abs=1e-5)  # 8, not 10
    with pytest.raises(ValueError, match=r"\(3, 3\)"): frc(gt_baseline(listener), listener, np.eye(2))


def test_dtw_matches_reference():
    rng = np.random.default_rng(3)
    for t1, t2, d in [(10, 10, 1), (13, 21, 2), (30, 17, 15)]:
        a, b = rng.random((t1, d)).astype(np.float32), rng.random((t2, d)).astype(np.float32)
        assert dtw_distance(a, b) == pytest.approx(dtw_reference(a, b), rel=1e-6)
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
    p = np.zeros((2, 2, 1, 1))
    p[0, 1] = 2.0                         # speaker 0 samples 0, 2; speaker 1 samples 0, 0
    assert frdiv(p) == pytest.approx((2 * 4 / 2 + 0) / 2)             # ordered pairs: 2 * 4 / (2*1*1*1), then mean
    assert frdvs(p) == pytest.approx((0 + 2 * 4 / 2) / 2)             # sample 0: 0; sample 1: 2*4/(2*1)
    q = np.zeros((1, 1, 3, 1))
    q[0, 0, :, 0] = [0, 1, 2]
    assert frvar(q) == pytest.approx(1.0)                             # unbiased variance of 0, 1, 2


def test_tlcc_quirks():
    rng = np.random.default_rng(5)
    sp = rng.random((1, 300, 3))
    lag = 7
    listener = np.concatenate([rng.random((1, lag, 3)), sp[:, :-lag]], 1)  # listener[t] = speaker[t - lag]
    assert tlcc_offsets(listener, sp, 49)[0] == -lag                   # baseline's sign: offset = -lag at the peak
    listener_c = listener.copy()
    listener_c[..., 0] = 0                # one constant dim
    assert tlcc_offsets(listener_c, sp, 49)[0] == 49                    # NaN at every lag -> first lag wins
    assert tlcc_offsets(listener_c, sp, 49, constant_dims="skip")[0] == -lag
    assert np.isnan(lagged_correlation(listener_c, sp, 5)).all()
    pred = np.concatenate([listener[:, None], rng.random((1, 9, 300, 3))], 1)  # only sample 0 is in sync
    assert frsyn(pred, sp) == lag                                       # baseline: sample 0 only
    assert frsyn(pred, sp, all_samples=True) > lag
    with pytest.raises(ValueError, match="constant_dims"): frsyn(pred, sp, constant_dims="zero")


def test_naive_baselines_values():
    rng = np.random.default_rng(6)
    sp, li = rng.random((4, 20, 25), dtype=np.float32), rng.random((4, 20, 25), dtype=np.float32)   # distinct per speaker
    mime, gt = mime_baseline(sp, 3), gt_baseline(li)
    assert mime.shape == (4, 3, 20, 25) and gt.shape == (4, 10, 20, 25)
    for k in range(3): np.testing.assert_array_equal(mime[:, k], sp)           # Mime: every sample is its own speaker
    for k in range(10): np.testing.assert_array_equal(gt[:, k], li)            # GT: every sample is its own listener
    r = random_baseline(4, 10, 20, seed=1)
    assert r.shape == (4, 10, 20, 25) and r.dtype == np.float32 and 0 <= r.min() and r.max() < 1
    assert not np.array_equal(r[:, 0], r[:, 1])                                # samples are drawn, not repeated
    assert r.mean() == pytest.approx(0.5, abs=0.01) and r.var() == pytest.approx(1 / 12, abs=0.005)   # uniform on [0, 1)
    assert np.array_equal(r, random_baseline(4, 10, 20, seed=1)) and not np.array_equal(r, random_baseline(4, 10, 20, seed=2))
    train = rng.normal(size=(5, 20, 25))                                       # (M, T, D) training sequences
    seq, fr = mean_sequence_baseline(train, 4, 2), mean_frame_baseline(train, 4, 2)
    assert seq.shape == fr.shape == (4, 2, 20, 25)
    np.testing.assert_allclose(seq[2, 1], sum(train) / 5, rtol=1e-5, atol=1e-6)  # MeanSeq: frame-wise mean of the 5
    np.testing.assert_allclose(fr[3, 0, 7], train.reshape(-1, 25).sum(0) / 100, rtol=1e-5, atol=1e-6)  # MeanFr: mean frame
    assert (fr == fr[:, :, :1]).all() and not (seq == seq[:, :, :1]).all()     # MeanFr holds one frame; MeanSeq moves
