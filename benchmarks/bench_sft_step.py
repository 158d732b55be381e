"""Cost of one `trainer.mode=rollout` training step, measured in one run on the same batches and weights:
the audio encoder run separately for the rollout and the training pass (as before) or once and shared (`mem=`),
and the phone cross-entropy (`trainer.phone_weight`) off or on. Steps alternate between the variants so that
machine load affects them alike.

Usage: python benchmarks/bench_sft_step.py [ROOT] [--steps 30] [--threads 1]
Without ROOT the demo synthetic corpus is generated into a temporary folder first.
Prints a table (median ms per step) and one JSON line.
"""
import argparse, json, statistics, tempfile, time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("root", nargs="?")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=4)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    from speechface.data.dataset import FaceFormerDataset, collate_faceformer
    from speechface.models.faceformer import FaceFormer
    from speechface.train.settings import load_config
    from speechface.train.supervised import model_config, masked_mse
    root = a.root
    if root is None:
        from speechface.data.synth import generate_corpus
        root = Path(tempfile.mkdtemp()) / "small"
        generate_corpus(root, "small", progress=False)
    cfg = load_config([f"dataset.root={root}", "trainer=cpu"])
    ds = FaceFormerDataset(root, "train", with_mel=False, phones=True)
    torch.manual_seed(0)
    model = FaceFormer(model_config(cfg, ds)).train()
    opt = torch.optim.Adam(model.parameters(), lr=0.0)                  # lr 0: every variant sees the same weights
    dl = DataLoader(ds, batch_size=a.batch_size, shuffle=True, collate_fn=collate_faceformer,
                    generator=torch.Generator().manual_seed(0))

    def step(b, shared: bool, phones: bool):
        T = b["motion"].shape[1]
        mem = model.encode_audio(b["audio"], T) if shared or phones else None
        with torch.no_grad():
            own = model(b["audio"], b["template"], b["one_hot"], n_frames=T, mode="autoregressive",
                        mem=mem.detach() if shared else None)["mu"]
        out = model(b["audio"], b["template"], b["one_hot"], motion=own, mode="teacher", mem=mem if shared else None)
        loss = masked_mse(out["mu"], b["motion"], b["motion_mask"])
        if phones:
            ce = F.cross_entropy(model.phone_logits(mem).flatten(0, 1), b["phones"].flatten(), ignore_index=-100)
            loss = loss + model.cfg.motion_scale ** 2 * ce
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    variants = {"encoder twice, no phones": (False, False), "encoder shared, no phones": (True, False),
                "encoder shared + phone CE": (True, True)}
    times = {k: [] for k in variants}
    batches = []
    for b in dl:
        batches.append(b)
        if len(batches) == a.steps + 2: break
    for i, b in enumerate(batches):
        for name, (shared, phones) in variants.items():
            t0 = time.perf_counter()
            step(b, shared, phones)
            dt = time.perf_counter() - t0
            if i >= 2: times[name].append(dt)                            # the first two batches warm up
    base = statistics.median(times["encoder twice, no phones"])
    rows = {k: {"ms_per_step": 1000 * statistics.median(v), "ratio_to_encoder_twice": statistics.median(v) / base}
            for k, v in times.items()}
    print(f"{'variant':28s} {'ms/step':>8s} {'ratio':>6s}")
    for k, r in rows.items(): print(f"{k:28s} {r['ms_per_step']:8.1f} {r['ratio_to_encoder_twice']:6.2f}")
    print(json.dumps({"bench": "sft_step", "threads": a.threads, "steps": len(times[next(iter(times))]),
                      "batch_size": a.batch_size, **{k: round(r["ms_per_step"], 2) for k, r in rows.items()}}))


if __name__ == "__main__":
    main()
