#!/usr/bin/env bash
# The GPU checks of a lent device machine (no network there): decoding engines (fused, CUDA graph, torch.compile)
# at VOCASET and BIWI sizes, end-to-end predict, and supervised training throughput (fp32 vs bf16).
# Usage there (from the repo root, with the wheels in .whl/ and a corpus in .gpudata/synth_tiny, see docs/DEVELOPING.md):
#   bash benchmarks/gpu_checks.sh            # writes its tables to $OUT (or ./gpu_results)
set -u
OUT=${OUT:-gpu_results}; mkdir -p "$OUT"
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  cp -r .whl/antlr4 /tmp/site/ 2>/dev/null
  export PYTHONPATH=/tmp/site:$PWD
fi
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
python3 -c "import torch, transformers, accelerate; print('torch', torch.__version__, 'transformers', transformers.__version__, 'accelerate', accelerate.__version__)" | tee -a "$OUT/gpu.txt"
echo "== decoding engines and end-to-end predict"
timeout 240 python3 -m speechface.cli bench inference --device cuda --engines fused graph --decode-datasets vocaset biwi \
  --frames 150 480 1800 --seconds 2 16 --repeats 3 --max-recompute-s 10 2>&1 | tee "$OUT/bench_inference_cuda.md"
echo "== torch.compile engine"
timeout 150 python3 -m speechface.cli bench inference --device cuda --only decoding --engines fused compile graph \
  --frames 480 --repeats 3 --max-recompute-s 5 2>&1 | tee "$OUT/bench_compile_cuda.md"
echo "== training throughput"
timeout 240 python3 benchmarks/bench_train_throughput.py ${1:-.gpudata/synth_tiny} --device cuda --processes 1 \
  --precisions no bf16 --epochs 4 --batch-size 16 2>&1 | tee "$OUT/train_throughput_cuda.md"
