#!/usr/bin/env bash
# The GPU measurements (R50 2D vs SmallBig-R50 Full in bf16, eager and compiled; the AMP
# training step in bf16 and fp16), in one run of under 8 minutes on one GPU. Needs PyTorch
# with CUDA and nothing else of the project's dependencies. Figures go to $OUT (default .).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device: nothing to measure')"
timeout 470 python3 -m benchmarks.gpu_check --out "${OUT:-.}/gpu_check.json" "$@"
