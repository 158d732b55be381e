"""Festival as a second synthesiser family: synthesis per voice, the phone map, closure of the ground-truth mesh at /p b m/,
determinism, the missing-Festival message, and hostile sentences that must stay text."""
import hashlib, json, os, shutil, subprocess
from pathlib import Path
import numpy as np, pytest

from speechface.data import festival
from speechface.data.articulation import BILABIALS, normalize_phone
from speechface.data.mesh import inner_lip_distance
from speechface.data.synth import generate_corpus, speakers
from speechface.data.textgrid import read_textgrid
from clirun import run

needs_festival = pytest.mark.skipif(not festival.festival_available(),
                                    reason=f"Festival is not installed ({festival.INSTALL_COMMAND}); CI installs it")
VOICES = list(festival.FESTIVAL_VOICES)
TEXTS = ["Bob made maps of the moon.", "Please pass the butter and the warm bread.", "Five brave men swam past the big boat."]


def digest(root):
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(Path(root).rglob("*")) if p.is_file()}


@needs_festival
@pytest.mark.parametrize("voice", VOICES)
def test_synthesis_per_voice(voice):
    utts = festival.synthesize_batch([dict(text=t, voice=voice) for t in TEXTS])
    for t, u in zip(TEXTS, utts):
        assert u.sr == 22050 and u.audio.dtype == np.int16 and u.duration > 0.8
        s, e = np.array([p[0] for p in u.phones]), np.array([p[1] for p in u.phones])
        np.testing.assert_allclose(s[1:], e[:-1])
        assert abs(e[-1] - u.duration) < 1e-9 and s[0] == 0
        labels = [p for *_, p in u.phones]
        assert all(lab == "" or normalize_phone(lab) == lab for lab in labels), labels     # all in the articulation inventory
        assert {"b", "m"} <= set(labels) and len(u.stress) == len(u.phones) and 2 in u.stress
        assert " ".join(w for *_, w in u.words).lower() == t.rstrip(".").lower()


@needs_festival
@pytest.mark.parametrize("voice", VOICES)
def test_every_phone_of_every_voice_maps(voice, tmp_path):
    script = tmp_path / "p.scm"
    script.write_text(f"(voice_{voice})\n(format t \"%l\\n\" (mapcar car (cadr (assoc 'phones (PhoneSet.description '(phones))))))\n")
    phones = subprocess.run(["festival", "-b", str(script)], capture_output=True, text=True, check=True).stdout.strip("()\n").split()
    assert len(phones) > 40 and set(phones) == set(festival.RADIO_TO_ARTICULATION)
    assert {r for r, lab in festival.RADIO_TO_ARTICULATION.items() if lab in BILABIALS} == {"p", "b", "m", "em"}


@needs_festival
def test_mixed_corpus_deterministic_and_closes_at_bilabials(tmp_path):
    a = generate_corpus(tmp_path / "a", "tiny", seed=3, progress=False, voices="espeak,festival")
    generate_corpus(tmp_path / "b", "tiny", seed=3, progress=False, voices="festival,espeak")
    da = digest(tmp_path / "a")
    assert da == digest(tmp_path / "b")
    generate_corpus(tmp_path / "e", "tiny", seed=3, progress=False)                       # eSpeak only
    de = digest(tmp_path / "e")
    assert {k: v for k, v in da.items() if "/synth_" in k} == {k: v for k, v in de.items() if "/synth_" in k}
    assert "voices" not in json.loads((tmp_path / "e" / "metadata.json").read_text())      # eSpeak-only metadata unchanged
    fest = speakers(a, family="festival")
    assert len(fest) == 12 and {a["subjects"][n]["voice"] for n in speakers(a, family="festival", split="test")} == set(VOICES)
    regions = __import__("pickle").load(open(tmp_path / "a" / "regions.pkl", "rb"))
    n = 0
    for stem in sorted(k[4:-4] for k in da if k.startswith("wav/fest_")):
        d = inner_lip_distance(np.load(tmp_path / "a" / "vertices_npy" / f"{stem}.npy"),
                               regions["inner_lip_upper"], regions["inner_lip_lower"])
        t = np.arange(len(d)) / a["fps"]
        for s, e, ph in read_textgrid(tmp_path / "a" / "textgrids" / f"{stem}.TextGrid")["phones"]:
            if ph in BILABIALS:
                n += 1
                assert d[(t >= s - 0.04) & (t <= e + 0.04)].min() < 1e-6, (stem, s, ph)
    assert n > 30


@needs_festival
def test_batch_position_does_not_change_an_utterance():
    job = dict(text=TEXTS[1], voice="kal_diphone", pitch=2, rate=95)
    alone = festival.synthesize_batch([job])[0]
    mixed = festival.synthesize_batch([dict(text=TEXTS[0], voice="cmu_us_slt_arctic_hts", rate=110), job])[1]
    assert np.array_equal(alone.audio, mixed.audio) and alone.phones == mixed.phones


def test_missing_festival_message(tmp_path):
    env = {"PATH": str(Path(shutil.which("speechface")).parent)}                           # the venv's bin only: no festival
    r = run("synth", "--preset", "tiny", "--voices", "espeak,festival", "--out", str(tmp_path / "x"), "--quiet", check=False, env=env)
    assert r.returncode == 2 and festival.INSTALL_COMMAND in r.stderr and not (tmp_path / "x").exists()
    assert len([ln for ln in r.stderr.splitlines() if "error" in ln]) == 1
    old = os.environ["PATH"]
    os.environ["PATH"] = env["PATH"]
    try:
        with pytest.raises(festival.FestivalMissing, match="apt-get install festival festvox-kallpc16k"):
            generate_corpus(tmp_path / "y", "tiny", voices="festival")
    finally: os.environ["PATH"] = old
    run("synth", "--preset", "tiny", "--voices", "espeak", "--out", str(tmp_path / "z"), "--quiet", env=env)   # eSpeak still works
    assert (tmp_path / "z" / "metadata.json").is_file()


HOSTILE = ['He said "hi" \\ (quit) to me.', '") (system "touch {dir}/PWNED") ("', '\\") (exit) (display \\"',
           "(set! utt nil) ; comment", "line one\nline two\t(tab)"]


@needs_festival
@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_sentence_is_spoken_not_run(text, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    text = text.replace("{dir}", str(tmp_path))                     # an absolute path: Festival runs in its own folder
    utts = festival.synthesize_batch([dict(text=text, voice="kal_diphone"), dict(text="Bob is here.", voice="kal_diphone")])
    assert not (tmp_path / "PWNED").exists() and not list(tmp_path.iterdir())
    assert len(utts) == 2 and [w for *_, w in utts[1].words] == ["Bob", "is", "here"]        # the batch went on after it
    assert any(p for *_, p in utts[0].phones) and utts[0].text == text


def test_unspeakable_text_is_refused_clearly():
    with pytest.raises(ValueError, match="printable ASCII"): festival.scheme_string("naïve \x1b[2J")
    with pytest.raises(ValueError, match="nothing to speak"): festival.festival_script([dict(text="?!", voice="kal_diphone")], Path("."))
    assert festival.scheme_string('a "b" \\ c') == '"a \\"b\\" \\\\ c"'
