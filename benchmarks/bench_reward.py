"""Reward-model throughput: clips scored per second by `score_sequence` (one batched forward), CPU, 1 thread by default.

Usage: python benchmarks/bench_reward.py [--threads 1] [--seconds 4] [--repeats 3]
Scores B sequences of T frames (B·(T-4) sliding clips) for a few sync-expert/mesh sizes. Prints a table and one JSON line.
"""
import argparse, json, time

import torch


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--frames", type=int, default=120)
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    from speechface.models.reward import SyncExpertConfig, SyncExpert, RewardHead, score_sequence
    cases = [  # name, V, region size (None = all), SyncExpertConfig overrides
        ("tiny corpus, small sync expert", 300, 10, {"d_model": 64, "n_layers": 1, "conv_channels": 8}),
        ("tiny corpus, default sync expert", 300, 10, {}),
        ("VOCASET V=5023, lips 250, default", 5023, 250, {}),
        ("VOCASET V=5023, all vertices, default", 5023, None, {}),
    ]
    B, T = a.batch, a.frames
    rows = []
    for name, V, K, kw in cases:
        torch.manual_seed(0)
        bb = SyncExpert(SyncExpertConfig(motion_dim=3 * V, **kw), None if K is None else torch.arange(K)).eval()
        head = RewardHead().eval()
        verts, mel, tpl = torch.randn(B, T, 3 * V) * 0.01, torch.randn(B, T - 4, 1, 20, 128), torch.zeros(B, 3 * V)
        with torch.no_grad():
            score_sequence(bb, head, verts, mel, template=tpl)                        # warm-up
            best = float("inf")
            for _ in range(a.repeats):
                t0 = time.perf_counter()
                score_sequence(bb, head, verts, mel, template=tpl)
                best = min(best, time.perf_counter() - t0)
        n = B * (T - 4)
        rows.append({"case": name, "params_M": round(sum(p.numel() for p in bb.parameters()) / 1e6, 2), "clips": n,
                     "seconds": round(best, 3), "clips_per_s": round(n / best)})
    w = max(len(r["case"]) for r in rows)
    print(f"{'case':<{w}}  params(M)  clips  seconds  clips/s   (threads={a.threads})")
    for r in rows: print(f"{r['case']:<{w}}  {r['params_M']:9}  {r['clips']:5}  {r['seconds']:7}  {r['clips_per_s']:7}")
    print(json.dumps({"threads": a.threads, "rows": rows}))


if __name__ == "__main__": main()
