"""Streaming (`speechface.inference.stream.Streamer`): compute per chunk, quality against lookahead, memory over a long stream.

Usage: python benchmarks/bench_stream.py --ckpt CKPT [CKPT ...] --data CORPUS [--n 30] [--minutes 30] [--out docs/results/stream_cpu.md]

* **compute**: one torch thread, 40-ms chunks of a corpus utterance, p50/p95 milliseconds per chunk (encoder window +
  decoder steps) for each lookahead;
* **quality**: on `--n` test utterances of the corpus (spread over its test speakers), each streamed at every lookahead
  and offline: closure F1 against the recording's ground truth and LVE (×1e-5 m², max lip-vertex error per frame,
  mean), next to the offline actor's, with the streamed-vs-offline RMS difference;
* **memory**: `--minutes` of audio (corpus utterances joined) streamed at 160 ms lookahead; the process' resident memory
  at 1, 10 and 30 minutes (and the audio and cache the streamer holds).
The lookahead rows are 0, 80, 160, 320 ms, the encoder's own right context (exact) and the whole stream.
"""
import argparse, json, sys, time
from pathlib import Path

import numpy as np
import torch


def rss_mib() -> float:
    "Resident memory of this process now (MiB), from /proc."
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * 4096 / 2**20


def wav2vec2_compute(a):
    "Per-chunk compute of the wav2vec2-base actor streamed with chunked attention (one thread), and its real-time factor."
    import pandas as pd
    from speechface.inference.stream import Streamer
    from speechface.models.audio_encoder import speed_up_encoder
    from speechface.models.faceformer import FaceFormerConfig
    from speechface.models.reference_import import build_reference_model
    cfg = FaceFormerConfig.vocaset(n_subjects=8, stochastic=False)
    torch.manual_seed(0)
    model = build_reference_model(cfg).eval()
    rng = np.random.default_rng(0)
    t = np.arange(8 * 16000) / 16000
    wav = ((0.5 + 0.5 * np.sin(2 * np.pi * 4 * t) ** 2) * np.sin(2 * np.pi * 180 * t) + 0.05 * rng.normal(size=len(t))).astype(np.float32)
    tpl, oh = torch.zeros(cfg.motion_dim), torch.eye(cfg.n_subjects)[0]
    rows = []
    for precision in ("fp32", "bf16"):
        speed_up_encoder(model.audio_encoder, precision)
        for chunk_ms in (40, 200):
            for ctx in (0.5, 1.0, 2.0):
                c = int(16000 * chunk_ms / 1000)
                st = Streamer(model, tpl, oh, lookahead_ms=160, context_s=ctx)
                t0 = time.perf_counter()
                for i in range(0, len(wav), c): st.push(wav[i:i + c])
                wall = time.perf_counter() - t0
                ms = 1000 * np.asarray(st.compute_s[int(1.0 * 16000 / c):])          # after the first second (window full)
                rows.append({"precision": precision, "chunk (ms)": chunk_ms, "context (s)": ctx, "compute / chunk p50 (ms)":
                             np.percentile(ms, 50), "p95 (ms)": np.percentile(ms, 95), "real-time factor": wall / (len(wav) / 16000)})
                print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    text = ("# Streaming a wav2vec2-base actor on this CPU (one thread)\n\n`python benchmarks/bench_stream.py --wav2vec2` — the "
            "VOCASET-size FaceFormer with wav2vec2-base (95 M parameters, random weights), 8 s of a tone-and-noise signal, lookahead "
            "160 ms, chunked attention over `context` seconds of earlier frames; p50/p95 over the chunks after the first second; "
            "real-time factor = compute ÷ audio duration (< 1 keeps up).\n\n" + table.round(3).to_markdown(index=False) + "\n")
    print(text)
    if a.out: Path(a.out).write_text(text)

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ckpt", nargs="+", help="actors of one corpus (e.g. trained offline and with the streaming options)")
    p.add_argument("--data", help="the corpus the actor was trained on")
    p.add_argument("--wav2vec2", action="store_true", help="instead: compute per chunk of a VOCASET-size wav2vec2-base actor "
                   "(random weights: speed does not depend on them) against its context, chunk and precision")
    p.add_argument("--split", default="test", choices=("test", "val"), help="which split's utterances (val: to choose a recipe)")
    p.add_argument("--speakers", nargs="*", default=None, help="only these speakers of the split (e.g. leave a held-out voice out)")
    p.add_argument("--lookaheads", nargs="*", type=float, default=None,
                   help="lookaheads (ms) to stream at; default 0 80 160 320, the encoder's own and the whole stream")
    p.add_argument("--n", type=int, default=30)
    p.add_argument("--minutes", type=float, default=30)
    p.add_argument("--chunk-ms", type=float, default=40)
    p.add_argument("--out", default=None)
    a = p.parse_args()
    torch.set_num_threads(1)
    if a.wav2vec2: return wav2vec2_compute(a)
    if not (a.ckpt and a.data): p.error("--ckpt and --data are needed (or --wav2vec2)")
    import pandas as pd
    from tqdm.auto import tqdm
    from speechface.core import load_checkpoint
    from speechface.data.audio import load_wav, normalize_audio
    from speechface.data.mesh import inner_lip_distance, load_regions
    from speechface.data.textgrid import read_textgrid
    from speechface.inference.stream import Streamer, encoder_lookahead_ms
    from speechface.metrics.perceptual import closure_segments, closure_f1
    from speechface.models.actor import load_actor
    data = Path(a.data)
    meta = json.loads((data / "metadata.json").read_text())
    actors = {}
    for path in a.ckpt:
        ck = load_checkpoint(path)
        actors[Path(path).parent.name] = (load_actor(ck).eval(), ck)
    subj = ck["train_subjects"]
    oh = torch.full((len(subj),), 1 / len(subj))                                  # the mean style
    reg = load_regions(data / "regions.pkl")
    lips, up, lo = reg["lips"], reg["inner_lip_upper"], reg["inner_lip_lower"]
    test = meta["split"][a.split]
    keep = set(test["subjects"]) if a.speakers is None else set(test["subjects"]) & set(a.speakers)
    if not keep: raise SystemExit(f"none of --speakers {a.speakers} is a {a.split} speaker ({test['subjects']})")
    by = {}
    for s in sorted(meta["texts"]):
        if s.rsplit("_", 1)[0] in keep and test["sentences"][0] <= int(s[-2:]) <= test["sentences"][1]:
            by.setdefault(s.rsplit("_", 1)[0], []).append(s)
    stems = [s for i in range(max(map(len, by.values()))) for v in by.values() if i < len(v) for s in [v[i]]][:a.n]
    from speechface.data.mesh import load_templates
    tpls = load_templates(data / "templates.pkl")
    name = lambda la: "whole stream" if la is None else f"{la:g}"
    c = int(16000 * a.chunk_ms / 1000)

    def stream(wav, tpl, la, **kw):
        st = Streamer(model, tpl, oh, lookahead_ms=la, **kw)
        out = [st.push(wav[i:i + c]) for i in range(0, len(wav), c)] + [st.finish()]
        return np.concatenate(out), st

    # quality and compute, per actor
    rows = []
    for actor_name, (model, ck) in actors.items():
        exact = encoder_lookahead_ms(model)
        lookaheads = [0, 80, 160, 320, exact, None] if exact > 320 else [0, 80, exact, 160, 320, None]
        if a.lookaheads is not None: lookaheads = a.lookaheads
        segs, lve, diff, comp = {}, {}, {}, {}
        for stem in tqdm(stems, desc="utterances"):
            speaker = stem.rsplit("_", 1)[0]
            tpl = torch.as_tensor(tpls[speaker].reshape(-1), dtype=torch.float32)     # the speaker's own face: LVE against the GT
            wav = load_wav(data / "wav" / f"{stem}.wav")
            gt = np.load(data / "vertices_npy" / f"{stem}.npy")
            phones = read_textgrid(data / meta["textgrids"] / f"{stem}.TextGrid")["phones"]
            T = max(1, int(round(len(wav) / 16000 * model.cfg.fps)))
            with torch.no_grad():
                off = model.predict(torch.from_numpy(np.asarray(normalize_audio(wav), np.float32))[None], tpl[None], oh[None],
                                    n_frames=T)[0].numpy()
            n = min(len(off), len(gt))
            d_gt = inner_lip_distance(gt[:n], up, lo)
            for key, motion, st in [("offline", off, None)] + [(name(la), *stream(wav, tpl, la)) for la in lookaheads]:
                m = motion[:n]
                segs.setdefault(key, []).append(closure_segments(inner_lip_distance(m, up, lo), d_gt, phones, model.cfg.fps))
                err = ((m.reshape(n, -1, 3)[:, lips] - gt[:n].reshape(n, -1, 3)[:, lips]) ** 2).sum(-1).max(1).mean()
                lve.setdefault(key, []).append(err)
                diff.setdefault(key, []).append(np.sqrt(((m - off[:n]) ** 2).mean()))
                if st is not None: comp.setdefault(key, []).extend(st.compute_s)
        off_f1, off_lve = closure_f1(segs["offline"]).f1, np.mean(lve["offline"])
        for key in ["offline"] + [name(la) for la in lookaheads]:
            f1 = closure_f1(segs[key]).f1
            timed = key not in ("offline", "whole stream")                             # the whole stream computes at its end
            ms = 1000 * np.asarray(comp.get(key, [np.nan]) if timed else [np.nan])
            rows.append({"actor": actor_name, "encoder lookahead (ms)": exact, "lookahead (ms)": key, "closure F1": f1,
                         "Δ F1 vs offline (points)": 100 * (f1 - off_f1),
                         "LVE ×1e-5": 1e5 * np.mean(lve[key]), "LVE vs offline": np.mean(lve[key]) / off_lve - 1,
                         "RMS vs offline (mm)": 1000 * np.mean(diff[key]),
                         "compute / 40-ms chunk p50 (ms)": np.percentile(ms, 50), "p95 (ms)": np.percentile(ms, 95)})
    quality = pd.DataFrame(rows)
    print(quality.round(3).to_markdown(index=False))
    if a.minutes <= 0:
        head = (f"# Streaming quality ({a.split} split)\n\n`{' '.join(sys.argv)}` — {len(stems)} {a.split} utterances of "
                f"{', '.join(sorted(by))}")
        if a.out: Path(a.out).write_text(head + "\n\n" + quality.round(3).to_markdown(index=False) + "\n")
        return

    # memory over a long stream
    pool = [load_wav(data / "wav" / f"{s}.wav") for s in stems[:10]]
    total = int(a.minutes * 60 * 16000)
    tpl = torch.as_tensor(tpls[subj[0]].reshape(-1), dtype=torch.float32)
    model = next(iter(actors.values()))[0]
    st = Streamer(model, tpl, oh, lookahead_ms=160)
    marks, mem, fed, k, t0 = [1, 10, 30], [], 0, 0, time.time()
    bar = tqdm(total=total // c, desc=f"{a.minutes:g}-minute stream", unit="chunk")
    while fed < total:
        w = pool[k % len(pool)]
        k += 1
        for i in range(0, len(w), c):
            st.push(w[i:i + c])
            fed += len(w[i:i + c])
            bar.update(1)
            if marks and fed >= marks[0] * 60 * 16000:
                mem.append({"minute": marks.pop(0), "resident MiB": rss_mib(), "audio kept (samples)": len(st.buf),
                            "decoder cache (frames)": st.caches[0]["k"].shape[2], "frames": st.t})
            if fed >= total: break
    bar.close()
    memory = pd.DataFrame(mem)
    print(memory.round(1).to_markdown(index=False))
    if a.out:
        text = (f"# Streaming on this CPU (one thread)\n\n`python benchmarks/bench_stream.py --ckpt {a.ckpt} --data {a.data} "
                f"--n {a.n} --minutes {a.minutes:g}` — {len(stems)} {a.split} utterances of {', '.join(sorted(by))}, the mean style "
                f"on each speaker's own face, {a.chunk_ms:g}-ms chunks, audio level and band statistics running (nothing "
                f"known in advance). 'encoder lookahead' is where an actor's encoder is exact; below it the encoder "
                f"hears less than in training.\n\n" + quality.round(3).to_markdown(index=False) + "\n\nMemory while streaming "
                f"{a.minutes:g} minutes at 160 ms lookahead with `{next(iter(actors))}` ({time.time() - t0:.0f} s of compute):\n\n"
                + memory.round(1).to_markdown(index=False) + "\n")
        Path(a.out).write_text(text)
        print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
