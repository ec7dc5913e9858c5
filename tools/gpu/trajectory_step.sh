#!/usr/bin/env bash
# Motionformer's training step on one GPU, side by side in one command: joint attention, trajectory attention with
# the fused Triton stage two (the GPU default), and today's PyTorch stage twos (one pass, the autograd form, one query
# frame a pass), at the paper's shape: ViT-B/16, 16x224x224, bf16 autocast, batch 8, AdamW. First the Triton stage
# two is checked against the literal Eq. 4-6 on the GPU (float32, and bf16 autocast); then each variant's median
# step, peak memory and kernels per step (torch.profiler) go into one JSON record that names the device.
#
#   tools/gpu/trajectory_step.sh [RECORD]              RECORD: default reports/benchmarks/trajectory_step_cuda_fused.json
#   tools/gpu/trajectory_step.sh --cpu-check [RECORD]  the same command on a CPU at a tiny shape, the kernels through
#                                                 Triton's interpreter: that it runs end to end, not a measurement
#                                                 (some 5 minutes on 2 cores); RECORD: default under /tmp
#
# About 3-4 minutes of GPU time; at most 6 (the variants run slowest last, and the record is written after each, so
# a run stopped by the time limit keeps what it measured). Needs torch with CUDA and Triton, timm, einops, tabulate;
# not PyAV, pytorchvideo or fvcore. Where $OUT is set (a lent machine's output folder) a copy of the record goes
# there. Then, in the repository: `python -m reports readme` renders it in docs/mformer_memory.md.
set -uo pipefail
cd "$(dirname "$0")/../.."
if [ "${1:-}" = "--cpu-check" ]; then
    export TRITON_INTERPRET=1
    record=${2:-/tmp/trajectory_step_cpu_check.json}
    where=(--device cpu --shape tiny --batch 1 --warmup 1 --steps 1)
    limit=1800 per_variant=600
else
    unset TRITON_INTERPRET  # compiled kernels, not the interpreter the CPU tests use
    record=${1:-reports/benchmarks/trajectory_step_cuda_fused.json}
    where=(--device cuda --batch 8)
    limit=360 per_variant=60
    python -c "import torch, triton; assert torch.cuda.is_available(), 'no CUDA device'; \
print(torch.cuda.get_device_name(), '| torch', torch.__version__, '| triton', triton.__version__)" || exit 1
fi
timeout "$limit" python -m tools trajectory-step "${where[@]}" \
    --variants joint exact_fused exact_one_pass exact_autograd exact \
    --check-exact --profile --timeout "$per_variant" --record "$record"
status=$?
if [ -n "${OUT:-}" ] && [ -f "$record" ]; then cp "$record" "$OUT/"; fi
exit $status
