"""The held-out family protocol (issue 27): `dataset.holdout` keeps a voice out of training, validation and the one-hot;
`speechface test --voices` scores one family; tools/cross_family.py writes the train-family × test-family table."""
import shutil, subprocess, sys
from pathlib import Path

import pytest

from clirun import run

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
HTS = "cmu_us_slt_arctic_hts"
TINY = ["model.feature_dim=32", "model.audio.mel_dim=32", "trainer.lr=1e-3", "trainer.batch_size=4", "threads=1"]
pytestmark = pytest.mark.skipif(shutil.which("festival") is None, reason="Festival is not installed (apt-get install festival "
                                "festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts); CI installs it")


@pytest.fixture(scope="module")
def mixed():
    "The tiny corpus with eSpeak and Festival speakers (generated once, shared; read only)."
    from speechface.data.synth import cached_corpus
    return cached_corpus("tiny", voices=("espeak", "festival"))


@pytest.fixture(scope="module")
def held_out_run(mixed, tmp_path_factory):
    "A two-epoch SFT actor trained without the HTS voice."
    tmp = tmp_path_factory.mktemp("cf")
    (tmp / "data").symlink_to(mixed)
    ov = [f"dataset.root={tmp / 'data'}", f"out_dir={tmp / 'ck'}", "run=sft", f"dataset.holdout=[{HTS}]", *TINY]
    run("train", *ov, "trainer.epochs=2", "--quiet")
    return tmp, ov


def test_holdout_leaves_train_val_and_one_hot(mixed):
    from speechface.data.dataset import FaceFormerDataset, corpus_voices
    voice = {s: v for s, (_, v) in corpus_voices(mixed).items()}
    full = {s: FaceFormerDataset(mixed, s, with_mel=False) for s in ("train", "val", "test")}
    held = {s: FaceFormerDataset(mixed, s, with_mel=False, holdout=[HTS]) for s in ("train", "val", "test")}
    for s in ("train", "val"):
        assert HTS in {voice[it.subject] for it in full[s].items}, s                # the corpus has the voice there ...
        assert HTS not in {voice[it.subject] for it in held[s].items}, s            # ... and the filter takes it out
    assert HTS not in {voice[s] for s in held["train"].train_subjects}
    assert len(held["train"].train_subjects) == len(full["train"].train_subjects) - 2  # fest_slt1, fest_slt2
    assert held["train"][0]["one_hot"].shape == (len(held["train"].train_subjects),)
    assert HTS in {voice[it.subject] for it in held["test"].items}                   # evaluation keeps it
    assert {voice[it.subject] for it in FaceFormerDataset(mixed, "test", with_mel=False, voices=[HTS]).items} == {HTS}
    fam = FaceFormerDataset(mixed, "val", with_mel=False, holdout=["festival"])      # a whole family
    assert {it.subject for it in fam.items} == {"synth_f5", "synth_m5"}


def test_unknown_voice_and_voiceless_corpus_refused(mixed, tiny_corpus):
    from speechface.core import UsageError
    from speechface.data.dataset import FaceFormerDataset
    with pytest.raises(UsageError, match="has the families espeak, festival and the voices .*kal_diphone.*ked_diphone"):
        FaceFormerDataset(mixed, "train", with_mel=False, holdout=["cmu_us_awb_arctic"])
    with pytest.raises(UsageError, match="names no speaker voices"):
        FaceFormerDataset(tiny_corpus, "train", "vocaset", with_mel=False, holdout=[HTS])  # VOCASET: no voices to select
    with pytest.raises(UsageError, match="leaves no training speakers"):
        FaceFormerDataset(mixed, "train", with_mel=False, holdout=["espeak", "festival"])


def test_training_and_test_keep_the_holdout(held_out_run):
    import torch
    tmp, ov = held_out_run
    ck = torch.load(tmp / "ck" / "sft" / "best.pt", map_location="cpu", weights_only=False)
    assert not any(s.startswith("fest_slt") for s in ck["train_subjects"]) and len(ck["train_subjects"]) == 12
    assert ck["config"]["dataset"]["holdout"] == [HTS]
    plain = [o for o in ov if not o.startswith("dataset.holdout")]
    r = run("test", *plain, "--quiet", check=False)                                   # forgot the holdout: refused, told why
    assert r.returncode != 0 and f"dataset.holdout=['{HTS}']: pass the same to test" in r.stdout + r.stderr
    r = run("test", *ov, "--voices", HTS, "--quiet")
    res = tmp / "ck" / "sft" / "styledependant" / "results"
    assert {p.name.split("_sentence")[0] for p in res.glob("*_condition_mean.npy")} == {"fest_slt4"}
    assert "LVE" in r.stdout


def test_cross_family_table_rows_and_columns(held_out_run, mixed):
    import cross_family
    tmp, _ = held_out_run
    tab, units = cross_family.cross_family_table(mixed, "test", {"sft": tmp / "ck" / "sft" / "best.pt"}, n_boot=20)
    groups = ["espeak", HTS, "kal_diphone", "ked_diphone", "in-family (pooled)", "held out (pooled)"]
    assert list(dict.fromkeys(tab["test group"])) == groups
    assert len(tab) == len(groups) * 3 and set(tab["method"]) == {"sft", "ground truth", "static template"}
    for c in ("LVE (×1e-5)", "closure F1", "false closures", "phone closure recall", "phone false closures"):
        assert c in tab.columns and f"{c} CI" in tab.columns, c
    assert set(tab.loc[tab["group held out"], "test group"]) == {HTS, "held out (pooled)"}
    assert (tab["trained on"] == "espeak + festival (kal_diphone, ked_diphone)").all()
    gt = tab[tab.method == "ground truth"]
    assert (gt["LVE (×1e-5)"] == 0).all() and (gt["closure F1"] == 1).all()
    crit = cross_family.criteria(tab, units, "sft", 20)
    assert list(crit["check"]) == ["held-out / in-family closure F1 (issue: SFT ≥ 0.9)"]


def test_test_split_needs_the_final_preregistration(held_out_run, mixed, tmp_path):
    tmp, _ = held_out_run
    cmd = [sys.executable, str(ROOT / "tools" / "cross_family.py"), "table", "--data", str(mixed), "--split", "test",
           "--ckpt", f"sft={tmp / 'ck' / 'sft' / 'best.pt'}", "--n-boot", "5"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode != 0 and "needs --config" in r.stderr
    draft = tmp_path / "prereg.yaml"
    draft.write_text("status: draft\ndesign:\n  holdout: [cmu_us_slt_arctic_hts]\n")
    r = subprocess.run(cmd + ["--config", str(draft)], capture_output=True, text=True)
    assert r.returncode != 0 and "not 'final'" in r.stderr


def test_reward_and_rl_keep_the_holdout(held_out_run, mixed):
    "The sync expert and score head train without the held-out voice and record it; RL refuses a reward or actor that heard it."
    from speechface.core import load_checkpoint
    from speechface.models.reward import reward_holdout
    from speechface.train.reward import load_sync_data
    tmp, ov = held_out_run
    ov = [o for o in ov if o.split("=")[0] in ("dataset.root", "out_dir", "dataset.holdout", "threads")]   # not the SFT's keys
    small = ["+trainer.model.d_model=32", "+trainer.model.n_layers=1", "trainer.epochs=1", "--quiet"]
    names = {q["name"].split("_sentence")[0] for q in load_sync_data(mixed, ("train", "val"), holdout=[HTS])}
    assert names and not any(n.startswith("fest_slt") for n in names) and any(n.startswith("fest_kal") for n in names)
    run("train", *ov, "trainer=sync_expert", *small)
    expert, head = tmp / "ck" / "reward" / "sync_expert.pt", tmp / "ck" / "reward" / "reward_head.pt"
    assert reward_holdout(expert) == [HTS] and load_checkpoint(expert)["holdout"] == [HTS]
    run("train", *ov, "trainer=reward_head", f"trainer.sync_expert={expert}", "trainer.epochs=1", "--quiet")
    assert reward_holdout(head) == [HTS]
    plain = [o for o in ov if not o.startswith("dataset.holdout")]
    run("train", *plain, "trainer=sync_expert", f"trainer.out={tmp / 'all' / 'sync_expert.pt'}", *small)
    assert reward_holdout(tmp / "all" / "sync_expert.pt") == []                      # heard every voice
    rl = ["trainer=rl", "trainer.variant=backprop", "trainer.epochs=1", "trainer.batch_size=2", "trainer.max_train_items=4",
          f"trainer.init_actor={tmp / 'ck' / 'sft' / 'best.pt'}", f"trainer.head={head}"]
    r = run("train", *ov, *rl, "run=rl", f"trainer.sync_expert={expert}", "--quiet")
    ck = load_checkpoint(tmp / "ck" / "rl" / "best.pt")
    assert ck["config"]["dataset"]["holdout"] == [HTS] and not any(s.startswith("fest_slt") for s in ck["train_subjects"])
    r = run("train", *ov, *rl, "run=rl2", f"trainer.sync_expert={tmp / 'all' / 'sync_expert.pt'}", check=False)
    assert r.returncode != 0 and f"the sync expert was trained on ['{HTS}']" in r.stderr and "Traceback" not in r.stderr, r.stderr
    r = run("train", *plain, *rl, "run=rl3", f"trainer.sync_expert={expert}", check=False)   # RL forgot the actor's holdout
    assert r.returncode != 0 and f"was trained with dataset.holdout=['{HTS}']" in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_report_checks_each_criterion(held_out_run, mixed, tmp_path):
    "The study report: an 'RL' that is the SFT actor itself gains nothing, so its +5-point check fails and LVE ratios are 1."
    import cross_family
    tmp, _ = held_out_run
    sft = tmp / "ck" / "sft" / "best.pt"
    from speechface.data.dataset import resolve_spec, select_voices
    from speechface.evaluation.perceptual import train_lip_reader
    reader = train_lip_reader(mixed, select_voices(mixed, resolve_spec(mixed), [HTS]), epochs=1, progress=False)
    tab, units = cross_family.cross_family_table(mixed, "test", {"sft": sft, "rl": sft}, reader, n_boot=20)
    cross_family.flat(tab).to_csv(tmp_path / "t_s0_table.csv", index=False)
    cross_family.criteria(tab, units, "sft", 20).to_csv(tmp_path / "t_s0_criteria.csv", index=False)
    md = cross_family.report(str(tmp_path / "t"), [0])
    rows = [[c.strip() for c in line.split("|")[1:-1]] for line in md.splitlines() if line.startswith("|")]
    cells = next(r for r in rows if r[0] == "0")                                    # seed 0's checks
    assert cells[3] == "+0.000 [+0.000, +0.000]" and cells[4] == "**no**"          # no gain: the RL check fails
    assert cells[5] == "+0.000 [+0.000, +0.000]" and cells[6] == "1.000"          # held out: same lip-reading and LVE
    assert cells[10] == "1.000" and cells[11] == "yes"                                # in-family: no regression
    assert "held out (pooled)" in md and "Mean over seeds 0" in md
