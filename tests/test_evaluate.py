"""Scoring a results folder (`speechface.evaluation.evaluate`): exact scores, missing and stray files, bad inputs, the CLI handler."""
import json

import numpy as np
import pytest

from speechface.data.dataset import FaceFormerDataset
from speechface.evaluation.evaluate import (AVERAGE_ROW, RESULT_PATTERN, NoPredictionsError, PredictionFileError,
                                            evaluate_results, result_name, scan_results)
from speechface.cli import build_parser


@pytest.fixture(scope="module")
def corpus(tiny_corpus):
    return tiny_corpus


@pytest.fixture(scope="module")
def test_split(corpus):
    return FaceFormerDataset(corpus, "test", with_mel=False)


@pytest.fixture
def perfect(tmp_path, test_split):
    "Test fixture: a results folder whose every prediction is a copy of the ground truth."
    out = tmp_path / "run" / "styledependant" / "results"
    out.mkdir(parents=True)
    for it in test_split.items:
        gt = np.load(it.npy)
        for c in [*test_split.train_subjects, "mean"]: np.save(out / result_name(it.stem, c), gt)
    return out


def test_perfect_predictions_score_zero(perfect, corpus, test_split):
    table, report = evaluate_results(perfect, corpus)
    assert list(table.index) == [*test_split.train_subjects, AVERAGE_ROW, "mean"]
    assert (table["LVE (×1e-5)"] == 0).all() and (table["MVE (mm)"] == 0).all()
    assert (table["closure acc"] == 1).all() and (table["utterances"] == 2).all()
    assert report["missing"] == [] and report["unknown"] == [] and report["n_scored"] == report["n_expected"] == 18


def test_longer_predictions_are_truncated(perfect, corpus, test_split):
    it = test_split.items[0]
    f = perfect / result_name(it.stem, "synth_f1")
    gt = np.load(it.npy)
    np.save(f, np.concatenate([gt, np.full((30, gt.shape[1]), 9.0, np.float32)]))
    table, _ = evaluate_results(perfect, corpus, conditions=["synth_f1"])
    assert table.loc["synth_f1", "LVE (×1e-5)"] == 0


def test_missing_files_are_listed_exactly(perfect, corpus, test_split):
    gone = [("synth_m6_sentence21", "synth_m2"), ("synth_m7_sentence21", "synth_m2"), ("synth_m7_sentence21", "mean")]
    for s, c in gone: (perfect / result_name(s, c)).unlink()
    table, report = evaluate_results(perfect, corpus)
    assert sorted((m["stem"], m["condition"]) for m in report["missing"]) == sorted(gone)
    assert "synth_m2" not in table.index                      # no file left for that style: no row, listed as missing
    assert table.loc["mean", "utterances"] == 1 and table.loc["synth_f1", "utterances"] == 2
    assert report["n_scored"] == 15
    assert AVERAGE_ROW in table.index and (table.loc[AVERAGE_ROW, "LVE (×1e-5)"] == 0)


def test_names_with_underscores_and_stray_files(perfect, test_split):
    (perfect / "synth_m6_sentence21_condition_synth_m4_old.npy").write_bytes(b"")
    (perfect / "synth_f5_sentence21_condition_synth_f1.npy").write_bytes(b"")   # a val utterance
    (perfect / "README").write_text("x")
    files = scan_results(perfect, test_split)
    assert set(files) == {it.stem for it in test_split.items} and all(len(c) == 9 for c in files.values())
    reasons = {p.name: why for p, why in files.unknown}
    assert "condition 'synth_m4_old'" in reasons["synth_m6_sentence21_condition_synth_m4_old.npy"]
    assert "not an utterance of split 'test'" in reasons["synth_f5_sentence21_condition_synth_f1.npy"]
    assert reasons["README"] == "not a .npy file"


def test_wrong_dimension_raises_naming_the_file(perfect, corpus, test_split):
    name = result_name("synth_m7_sentence21", "synth_f3")
    np.save(perfect / name, np.zeros((200, 15069), np.float32))
    with pytest.raises(PredictionFileError, match=f"{name}: expected shape \\(T, 3V\\)"): evaluate_results(perfect, corpus)


def test_short_prediction_raises_with_both_lengths(perfect, corpus, test_split):
    it = test_split.items[1]
    name = result_name(it.stem, "mean")
    gt = np.load(it.npy)
    np.save(perfect / name, gt[:-4])
    with pytest.raises(PredictionFileError, match=f"{name}: the prediction has {len(gt) - 4} frames but the ground truth has {len(gt)}"):
        evaluate_results(perfect, corpus)


def test_nan_prediction_raises_naming_the_file(perfect, corpus, test_split):
    it = test_split.items[0]
    name = result_name(it.stem, "synth_m1")
    gt = np.load(it.npy)
    gt[3, 5] = np.nan
    np.save(perfect / name, gt)
    with pytest.raises(PredictionFileError, match=f"{name}: 1 frame"): evaluate_results(perfect, corpus)


def test_empty_folder_raises_naming_folder_and_pattern(tmp_path, corpus):
    (tmp_path / "empty").mkdir()
    with pytest.raises(NoPredictionsError) as e: evaluate_results(tmp_path / "empty", corpus)
    assert str(tmp_path / "empty") in str(e.value) and RESULT_PATTERN in str(e.value)
    with pytest.raises(NoPredictionsError, match="does not exist"): evaluate_results(tmp_path / "nope", corpus)


def test_wrong_split_has_nothing_to_score(perfect, corpus):
    with pytest.raises(NoPredictionsError, match="not an utterance of split 'val'"): evaluate_results(perfect, corpus, split="val")


def parser():
    return build_parser()                                    # the CLI owns the argument parser


def test_cli_handler_writes_csv_and_json(perfect, corpus, capsys):
    (perfect / result_name("synth_m7_sentence21", "synth_f4")).unlink()
    a = parser().parse_args(["evaluate", str(perfect), "--data", str(corpus)])
    assert a.func(a) == 0
    out_dir = perfect.parent                                  # default: the results folder's parent
    csv = (out_dir / "metrics.csv").read_text().splitlines()
    assert csv[0].startswith("condition,utterances,LVE") and len(csv) == 1 + 10
    meta = json.loads((out_dir / "metrics.json").read_text())
    assert meta["missing"] == [{"stem": "synth_m7_sentence21", "condition": "synth_f4"}]
    assert meta["split"] == "test" and meta["n_utterances"] == 2 and meta["dataset_root"] == str(corpus.resolve())
    assert [r["condition"] for r in meta["table"]][-2:] == [AVERAGE_ROW, "mean"]
    printed = capsys.readouterr().out
    assert "| average over styles" in printed and "synth_m7_sentence21: synth_f4" in printed


def test_cli_handler_out_and_conditions(perfect, corpus, tmp_path, capsys):
    a = parser().parse_args(["evaluate", str(perfect), "--data", str(corpus), "--out", str(tmp_path / "o"),
                             "--conditions", "mean"])
    assert a.func(a) == 0
    meta = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert [r["condition"] for r in meta["table"]] == ["mean"]


def test_cli_handler_exit_1_when_nothing_scored(tmp_path, corpus, capsys):
    (tmp_path / "empty").mkdir()
    a = parser().parse_args(["evaluate", str(tmp_path / "empty"), "--data", str(corpus)])
    assert a.func(a) == 1
    assert RESULT_PATTERN in capsys.readouterr().err
    assert not (tmp_path / "metrics.csv").exists()


def test_data_is_required():
    with pytest.raises(SystemExit): parser().parse_args(["evaluate", "somewhere"])
