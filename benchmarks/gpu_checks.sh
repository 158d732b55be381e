#!/usr/bin/env bash
# The GPU checks of a lent device machine (no network there): decoding engines (fused, CUDA graph, torch.compile)
# at VOCASET and BIWI sizes, end-to-end predict, supervised training throughput (fp32 vs bf16) and the reward
# trainers on the GPU. Usage there, from the repo root, with the wheels of the packages the machine lacks in .whl/
# and a corpus in .gpudata/synth_tiny (docs/DEVELOPING.md, "On a lent GPU"):
#   CHECKS="inference compile train reward" bash benchmarks/gpu_checks.sh     # writes its tables to $OUT (or ./gpu_results)
set -u -o pipefail
OUT=${OUT:-gpu_results}; mkdir -p "$OUT"
CHECKS=${CHECKS:-inference compile train reward encoder batch long react}
ROOT=${ROOT:-.gpudata/synth_tiny}
DYADIC=${DYADIC:-.gpudata/dyadic_tiny}   # the tiny dyadic corpus (its OpenFace folder may be left out: the VAE then reads 3DMM)
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  cp -r .whl/antlr4 /tmp/site/ 2>/dev/null
  export PYTHONPATH=/tmp/site:$PWD
fi
export PYTHONUNBUFFERED=1
status=0
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
python3 -c "import torch, transformers, accelerate; print('torch', torch.__version__, 'transformers', transformers.__version__, 'accelerate', accelerate.__version__)" | tee -a "$OUT/gpu.txt"
if [[ $CHECKS == *inference* ]]; then
  echo "== decoding engines and end-to-end predict"
  timeout 240 python3 -m speechface.cli bench inference --device cuda --engines fused graph --decode-datasets vocaset biwi \
    --frames 150 480 1800 --seconds 2 16 --repeats 3 --max-recompute-s 10 2>&1 | tee "$OUT/bench_inference_cuda.md" || status=1
fi
if [[ $CHECKS == *compile* ]]; then
  echo "== torch.compile engine"
  timeout 150 python3 -m speechface.cli bench inference --device cuda --only decoding --engines fused compile graph \
    --frames 480 --repeats 3 --max-recompute-s 5 2>&1 | tee "$OUT/bench_compile_cuda.md" || status=1
fi
if [[ $CHECKS == *encoder* ]]; then
  echo "== audio-encoder options (bf16, eager attention, torch.compile)"
  timeout 200 python3 -W ignore -m speechface.cli bench inference --device cuda --only encoder --compile --repeats 5 2>&1 | tee "$OUT/bench_encoder_cuda.md" || status=1
fi
if [[ $CHECKS == *batch* ]]; then
  echo "== many utterances (predict_many; CUDA-graph decoding)"
  timeout 120 python3 -W ignore -m speechface.cli bench inference --device cuda --only batch --engines fused graph 2>&1 | tee "$OUT/bench_batch_cuda.md" || status=1
fi
if [[ $CHECKS == *long* ]]; then
  echo "== long audio (60 s, 5 min)"
  timeout 200 python3 -W ignore -m speechface.cli bench inference --device cuda --only long --engines fused graph 2>&1 | tee "$OUT/bench_long_cuda.md" || status=1
fi
if [[ $CHECKS == *train* ]]; then
  echo "== training throughput"
  timeout 240 python3 benchmarks/bench_train_throughput.py "$ROOT" --device cuda --processes 1 \
    --precisions no bf16 --epochs 4 --batch-size 16 2>&1 | tee "$OUT/train_throughput_cuda.md" || status=1
fi
if [[ $CHECKS == *reward* ]]; then
  echo "== reward trainers on the GPU (sync expert, score head; bf16)"
  echo "| precision | sync loss | sync top-1 | sync val acc | sync steps/s | sync peak MiB | head lip acc | wall s |" | tee "$OUT/reward_cuda.md"
  timeout 180 python3 -W ignore - "$ROOT" "$OUT" <<'PY' 2>&1 | tee -a "$OUT/reward_cuda.md" || status=1
import sys, time, tempfile
from speechface.train.reward import train_sync_expert, train_reward_head
from speechface.train.settings import SyncExpertSettings, RewardHeadSettings
root, tmp = sys.argv[1], tempfile.mkdtemp()
for prec in ("no", "bf16"):
    t = time.time()
    r = train_sync_expert(root, SyncExpertSettings(epochs=6, mixed_precision=prec, out=f"{tmp}/{prec}/sync_expert.pt"),
                          progress=False, device="cuda")
    h = train_reward_head(root, RewardHeadSettings(epochs=3, mixed_precision=prec, sync_expert=f"{tmp}/{prec}/sync_expert.pt",
                                                   out=f"{tmp}/{prec}/reward_head.pt"), progress=False, device="cuda")
    last = r["history"][-1]
    print(f"| {prec} | {last['train_loss']:.4f} | {last['train_top1']:.3f} | {last.get('val_acc', float('nan')):.3f} | "
          f"{last['steps_per_s']:.2f} | {last['peak_mib']:.0f} | {h['history'][-1]['train_lip_acc']:.3f} | {time.time() - t:.1f} |")
PY
fi
if [[ $CHECKS == *react* ]]; then
  echo "== listener-reaction trainers on the GPU (FSQ path, VAE; fp32 and bf16; default model sizes)"
  echo "| trainer | precision | epochs | s per epoch (last) | final train loss | best | generate 10 x S s | wall s |" | tee "$OUT/react_cuda.md"
  timeout 300 python3 -W ignore - "$DYADIC" "$OUT" <<'PY' 2>&1 | tee -a "$OUT/react_cuda.md" || status=1
import sys, time, tempfile, torch
from speechface.train.settings import load_config
from speechface.train.reaction import train_reaction, load_reaction_model, generate_reactions
from speechface.data.react import REACTDataset
root, tmp = sys.argv[1], tempfile.mkdtemp()
for trainer in ("reaction_fsq", "reaction_vae"):
    for prec in ("no", "bf16"):
        t = time.time()
        ov = [f"trainer={trainer}", "dataset=dyadic", f"dataset.root={root}", f"out_dir={tmp}", f"run={trainer}_{prec}",
              "device=cuda", "trainer.epochs=6", f"trainer.mixed_precision={prec}"]
        if trainer == "reaction_fsq": ov.append("trainer.tokenizer.epochs=10")
        r = train_reaction(load_config(ov), progress=False)
        h = r["history"][-1]
        rm = load_reaction_model(f"{tmp}/{trainer}_{prec}/best.pt", device="cuda")
        ds = REACTDataset(root, "test", mirror=True, n_frames=251)
        g = time.time(); emo = generate_reactions(rm, ds, n_samples=10, seed=0); g = time.time() - g
        assert emo.shape == (len(ds), 10, 251, 25) and torch.isfinite(torch.as_tensor(emo)).all()
        print(f"| {trainer} | {prec} | {len(r['history'])} | {h.get('epoch_s', float('nan')):.2f} | {h.get('train_loss', float('nan')):.4f} | "
              f"{r.get('best', float('nan')):.4f} | {g:.1f} | {time.time() - t:.0f} |", flush=True)
PY
fi
exit $status
