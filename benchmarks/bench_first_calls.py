"""Speed claims that used to be wall-clock asserts in tests, measured as ratios in one run.

Usage: python benchmarks/bench_first_calls.py [--threads 1] [--repeats 5]

* tiny corpus: seconds of speech generated per wall second (real-time factor, > 1 is faster than real time), for
  `generate_corpus(preset='tiny')` in a fresh folder;
* log-mel front end: the first call against a warm call of the same size. The first call imports librosa and builds
  the mel filterbank (measured: 0.66 s against 1 ms warm, ratio ~600 on this 2-core machine, nearly all of it the
  librosa import); numba compilation, which the old test guarded against, would add several seconds more;
* tiny wav2vec2 encoder: seconds of audio per wall second on one utterance (median of `--repeats`);
* offline hub error: the time `load_pretrained` takes to refuse an uncached model id, against the warm log-mel call.

Prints a markdown table and one JSON line per row; numbers are ratios so that they compare across machines.
"""
import argparse, json, os, statistics, sys, tempfile, time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def median_time(fn, repeats: int) -> float:
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=5)
    a = p.parse_args(argv)
    import torch
    torch.set_num_threads(a.threads)
    import soundfile as sf
    from speechface.data.audio import log_mel_spectrogram
    from speechface.data.synth import generate_corpus
    from speechface.models.audio_encoder import (AudioEncoderConfig, AudioEncoderUnavailable, Wav2Vec2AudioEncoder,
                                                 load_pretrained)
    rows = []
    x = torch.randn(2, 3, 16000)
    t0 = time.perf_counter()
    log_mel_spectrogram(x, 16000, 400, 160, 80)
    first = time.perf_counter() - t0
    warm = median_time(lambda: log_mel_spectrogram(x, 16000, 400, 160, 80), a.repeats)
    rows.append({"what": "log-mel, first call ÷ warm call", "value": first / warm, "first_ms": 1e3 * first, "warm_ms": 1e3 * warm})

    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        generate_corpus(Path(d) / "tiny", "tiny", progress=False)
        wall = time.perf_counter() - t0
        speech = sum(sf.info(str(w)).duration for w in (Path(d) / "tiny" / "wav").glob("*.wav"))
    rows.append({"what": "tiny corpus, speech s ÷ wall s", "value": speech / wall, "speech_s": speech, "wall_s": wall})

    enc = Wav2Vec2AudioEncoder(AudioEncoderConfig(backend="wav2vec2", tiny=True)).eval()
    audio = torch.randn(1, 16000)
    with torch.inference_mode():
        enc(audio, 30, 30)
        t = median_time(lambda: enc(audio, 30, 30), a.repeats)
    rows.append({"what": "tiny wav2vec2, audio s ÷ wall s", "value": 1.0 / t, "ms_per_s_audio": 1e3 * t})

    from transformers import Wav2Vec2Model
    t0 = time.perf_counter()
    try: load_pretrained(Wav2Vec2Model, "speechface/not-a-cached-model", what="wav2vec2")
    except AudioEncoderUnavailable: pass
    err = time.perf_counter() - t0
    rows.append({"what": "offline hub error ÷ warm log-mel call", "value": err / warm, "error_ms": 1e3 * err})

    print(f"# first calls and small things ({a.threads} torch thread(s), median of {a.repeats})\n")
    print("| measure | ratio | detail |\n|---|---|---|")
    for r in rows:
        detail = ", ".join(f"{k} {v:.3g}" for k, v in r.items() if k not in ("what", "value"))
        print(f"| {r['what']} | {r['value']:.3g} | {detail} |")
    for r in rows: print(json.dumps(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
