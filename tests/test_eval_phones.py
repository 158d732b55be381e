"""`speechface eval-phones`: lips judged from a phone alignment alone — the corpus' ground truth calibrates it, bad folders are named."""
import shutil
import numpy as np
import pandas as pd
import pytest

from clirun import run
from speechface.data.mesh import inner_lip_distance
from speechface.evaluation.phones import gt_motion, utterance_files, eval_phones, phone_summary

TINY = ["model.feature_dim=32", "model.audio.mel_dim=32", "trainer.lr=1e-3", "trainer.batch_size=4"]
STEMS = ("synth_m6_sentence21", "synth_m7_sentence21")


def _pairs(corpus, folder, stems=STEMS):
    "A flat folder of X.wav + X.TextGrid copied from the corpus."
    folder.mkdir()
    for s in stems:
        shutil.copy(corpus / "wav" / f"{s}.wav", folder)
        shutil.copy(corpus / "textgrids" / f"{s}.TextGrid", folder)
    return folder


def _summary(corpus, make):
    "`phone_summary` of every utterance of the corpus with the motion `make(ground truth, gap)`."
    fps, regions, gt = gt_motion(corpus)
    def motion(stem, wav):
        g = gt(stem, wav)
        return make(g, inner_lip_distance(g, regions["inner_lip_upper"], regions["inner_lip_lower"]))
    return phone_summary(eval_phones(utterance_files(corpus), motion, fps, regions)[1])


def test_ground_truth_closes_every_bilabial_and_no_open_vowel(tiny_corpus, tmp_path):
    r = run("eval-phones", "--data", tiny_corpus, "--gt", "--out", tmp_path / "gt.csv", "--n-boot", "50", "--quiet")
    rows = pd.read_csv(tmp_path / "gt.csv")
    assert len(rows) == 20
    judged = rows[rows["reference"].notna()]
    assert len(judged) >= 15 and judged["bilabials"].sum() > 80
    assert (judged["closed"] == judged["bilabials"]).all() and (judged["false_closures"] == 0).all()
    assert "closure recall" in r.stdout and (tmp_path / "gt_summary.csv").is_file()
    table = pd.read_csv(tmp_path / "gt_summary.csv", index_col=0)
    assert table.loc["closure recall", "value"] == 1.0 and table.loc["false closures", "value"] == 0.0
    test = run("eval-phones", "--data", tiny_corpus, "--gt", "--split", "test", "--n-boot", "20", "--quiet")
    assert "| utterances         |   2.000" in test.stdout


def test_static_face_has_no_events_and_a_shut_mouth_closes_everywhere(tiny_corpus):
    static = _summary(tiny_corpus, lambda g, d: np.repeat(g[[int(d.argmax())]], len(g), 0))      # the widest frame, frozen
    assert static["closure events"] == 0 and static["closure recall"] == 0 and np.isnan(static["opening-loudness r"])
    shut = _summary(tiny_corpus, lambda g, d: np.repeat(g[[int(d.argmin())]], len(g), 0))        # lips together, frozen
    assert shut["closure recall"] == 1.0 and shut["false closures"] == 1.0 and shut["open vowels judged"] > 20
    squeezed = _summary(tiny_corpus, lambda g, d: 0.5 * (g + g[[int(d.argmax())]]))  # less motion: fewer closures
    assert squeezed["closure recall"] < 1.0


def test_missing_or_tierless_textgrid_is_named_in_one_line(tiny_corpus, tmp_path):
    folder = _pairs(tiny_corpus, tmp_path / "rec")
    (folder / f"{STEMS[1]}.TextGrid").unlink()
    r = run("eval-phones", "--data", folder, "--gt", check=False)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    assert f"{STEMS[1]}.wav: no TextGrid" in r.stderr
    (folder / f"{STEMS[1]}.TextGrid").write_text('File type = "ooTextFile"\nObject class = "TextGrid"\n0\n1\n<exists>\n1\n'
                                               '"IntervalTier"\n"words"\n0\n1\n1\n0\n1\n"hello"\n')
    fps, regions, _ = gt_motion(tiny_corpus)
    with pytest.raises(Exception, match=r"no 'phones' tier \(interval tiers: \['words'\]\)"):
        eval_phones(utterance_files(folder), lambda s, w: np.zeros((30, 900)), fps, regions)
    r = run("eval-phones", "--data", folder, "--gt", "--ckpt", "x.pt", check=False)
    assert r.returncode == 2 and "exactly one of them" in r.stderr
    r = run("eval-phones", "--data", tmp_path / "nowhere", "--gt", check=False)
    assert r.returncode == 2 and "is not a folder" in r.stderr


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory, tiny_corpus):
    tmp = tmp_path_factory.mktemp("t")
    (tmp / "tiny").symlink_to(tiny_corpus)
    run("train", f"dataset.root={tmp / 'tiny'}", f"out_dir={tmp / 'ck'}", *TINY, "trainer.epochs=1", "--quiet")
    return tmp / "ck" / "faceformer_synthetic" / "best.pt"


def test_checkpoint_on_a_folder_of_recordings(tiny_corpus, tiny_ckpt, tmp_path):
    folder = _pairs(tiny_corpus, tmp_path / "rec")
    r = run("eval-phones", "--data", folder, "--ckpt", tiny_ckpt, "--out", tmp_path / "p.csv", "--n-boot", "50", "--quiet")
    rows = pd.read_csv(tmp_path / "p.csv")
    assert rows["stem"].tolist() == list(STEMS) and (rows["bilabials"] > 0).all()
    assert "closure recall" in r.stdout and "opening-loudness r" in r.stdout and "CI low" in r.stdout
    print(r.stdout)
    r = run("eval-phones", "--data", folder, "--ckpt", tiny_ckpt, "--regions", tiny_corpus / "regions.pkl", "--quiet",
            "--n-boot", "20")
    assert "| utterances         |   2.000" in r.stdout


def test_a_vowel_between_two_close_labials_is_not_judged():
    "/ʌ/ of 'bump' (closures 100 ms apart) is not judged; the same vowel with one labial side, or long enough, is."
    from speechface.evaluation.phones import judged_open_vowels, phone_classes
    def judged(phones, **kw): return len(judged_open_vowels(phones, phone_classes(phones), 30, 60, **kw))
    bump = [(0.0, 0.1, "sil"), (0.1, 0.2, "b"), (0.2, 0.32, "V"), (0.32, 0.4, "m"), (0.4, 0.5, "p")]   # centre 60 ms from each
    assert judged(bump) == 0 and judged(bump, flank_s=0.0) == 1          # without the two-sided rule it would be judged
    one_side = [(0.0, 0.1, "sil"), (0.1, 0.2, "b"), (0.2, 0.32, "V"), (0.32, 0.4, "k"), (0.4, 0.5, "t")]
    assert judged(one_side) == 1
    long = [(0.0, 0.1, "sil"), (0.1, 0.2, "b"), (0.2, 0.4, "V"), (0.4, 0.5, "m")]
    assert judged(long) == 1


@pytest.mark.skipif(shutil.which("festival") is None, reason="Festival is not installed; CI installs it")
def test_ground_truth_calibration_holds_for_every_voice_family():
    "eSpeak and Festival speakers alike: the ground truth closes at every /p b m/ and at no judged open-vowel centre."
    from speechface.data.synth import cached_corpus
    from speechface.data.dataset import corpus_voices
    mixed = cached_corpus("tiny", voices=("espeak", "festival"))
    fps, regions, gt = gt_motion(mixed)
    stems, units = eval_phones(utterance_files(mixed), gt, fps, regions)
    fam = {s: f for s, (f, _) in corpus_voices(mixed).items()}
    for family in ("espeak", "festival"):
        us = [u for s, u in zip(stems, units) if fam[s.split("_sentence")[0]] == family]
        summ = phone_summary(us)
        assert summ["bilabials"] > 50 and summ["open vowels judged"] > 20, (family, summ)
        assert summ["closure recall"] == 1.0 and summ["false closures"] == 0.0, (family, summ)
