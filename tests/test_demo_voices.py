"""`speechface demo`'s voices: eSpeak + Festival when Festival is installed (one voice heard by no model), eSpeak alone
otherwise, and never a corpus of other voices silently reused."""
import json

import pytest

from speechface.core import UsageError
from speechface.pipeline import PLANS, demo_voices, check_demo_corpus, heard_voices


def test_auto_voices_follow_festival(monkeypatch, capsys):
    import speechface.pipeline as pipeline
    monkeypatch.setattr(pipeline, "festival_available", lambda: True)
    assert demo_voices(PLANS["full"]) == ("espeak", "festival") and PLANS["full"].holdout == ("cmu_us_slt_arctic_hts",)
    monkeypatch.setattr(pipeline, "festival_available", lambda: False)
    assert demo_voices(PLANS["full"]) == ("espeak",)
    out = capsys.readouterr().out
    assert "Festival is not installed" in out and "apt-get install festival festvox-kallpc16k" in out, out
    assert demo_voices(PLANS["full"], "espeak") == ("espeak",)   # asked for explicitly: no message, no Festival needed
    with pytest.raises(ValueError, match="choose one or more of espeak, festival"): demo_voices(PLANS["full"], "festivl")


def test_another_corpus_in_out_is_refused(tmp_path):
    (tmp_path / "metadata.json").write_text(json.dumps({"preset": "small", "voices": ["espeak"]}))
    check_demo_corpus(tmp_path, "small", ("espeak",))                                  # the same corpus: reused
    with pytest.raises(UsageError, match=r"holds the 'small' corpus with voices espeak, but this demo needs 'small' with "
                                         r"espeak,festival: give another output folder, or delete"):
        check_demo_corpus(tmp_path, "small", ("espeak", "festival"))
    with pytest.raises(UsageError, match="needs 'tiny'"): check_demo_corpus(tmp_path, "tiny", ("espeak",))
    (tmp_path / "metadata.json").write_text(json.dumps({"preset": "small"}))        # corpora from before --voices: eSpeak
    check_demo_corpus(tmp_path, "small", ("espeak",))
    (tmp_path / "metadata.json").write_text(json.dumps({"preset": "small", "voices": 5}))   # a damaged file: named, not a crash
    with pytest.raises(UsageError, match=r"metadata.json: field 'voices' must be a list of family names, got int"):
        check_demo_corpus(tmp_path, "small", ("espeak",))
    (tmp_path / "metadata.json").write_text("[1, 2]")
    from speechface.data.textgrid import MetadataError
    with pytest.raises(MetadataError, match="expected a JSON object"): check_demo_corpus(tmp_path, "small", ("espeak",))


def test_heard_voices_leave_out_the_held_out_one(monkeypatch):
    import speechface.pipeline as pipeline
    table = {"synth_f1": ("espeak", "en-us+f1"), "fest_kal1": ("festival", "kal_diphone"),
             "fest_slt1": ("festival", "cmu_us_slt_arctic_hts")}
    monkeypatch.setattr(pipeline, "corpus_voices", lambda root: table)
    assert heard_voices("x", ["cmu_us_slt_arctic_hts"]) == ["en-us+f1", "kal_diphone"]
    assert heard_voices("x", ["festival"]) == ["en-us+f1"]
