#!/usr/bin/env bash
# The repository's GPU claims measured in one run, each record written as soon as it is measured:
#   1. trajectory attention's training step (ViT-B/16, 16x224x224, bf16, batch 8): joint attention, the fused Triton
#      stage two (the GPU default) and the PyTorch stage twos, after the Triton kernels are checked against the
#      literal Eq. 4-6 on the device (`python -m tools trajectory-step`);
#   2. each paper's whole training step and peak memory, ours against the authors' code, same weights, batch,
#      precision and optimizer (`python -m tools paper-step`), with our logits against theirs on the device.
#
#   tools/gpu/measure.sh [--official-code FOLDER] [--xvit-shim FILE] [--records DIR]   GPU; DIR: reports/benchmarks
#   tools/gpu/measure.sh --cpu-check [...]    CPU, tiny shape / batch 1, the kernels through Triton's interpreter: that
#                                             it runs end to end, not a measurement; DIR: /tmp
#
# FOLDER holds the authors' checkouts (Motionformer, video-transformers, TokShift-Transformer, CAST), kept outside the
# repository's tracked files; without it each paper's step is ours alone. About 5 minutes on an H100 or H200, at most
# 8 (each part has its own limit). Needs torch with CUDA and Triton, timm, einops, tabulate, pydantic; for the
# authors' code also fvcore, iopath, yacs, ml_collections, simplejson. Where $OUT is set (a lent machine's output
# folder) a copy of each record goes there. Then, in the repository: `python -m reports readme` renders them.
set -uo pipefail
cd "$(dirname "$0")/../.."
check=0
official=()
records=""
while [ $# -gt 0 ]; do
    case "$1" in
        --cpu-check) check=1; shift ;;
        --official-code|--xvit-shim) official+=("$1" "$2"); shift 2 ;;
        --records) records="$2"; shift 2 ;;
        *) echo "tools/gpu/measure.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
if [ "$check" = 1 ]; then
    export TRITON_INTERPRET=1
    records=${records:-/tmp}
    trajectory_record=$records/trajectory_step_cpu_check.json paper_record=$records/paper_step_cpu_check.json
    trajectory=(--device cpu --shape tiny --batch 1 --warmup 1 --steps 1 --timeout 600)
    paper=(--cpu-check --timeout 900)  # no profile: the trajectory part checks the profiler; a CPU is slow
    limits=(1800 3600)
else
    unset TRITON_INTERPRET  # compiled kernels, not the interpreter the CPU tests use
    records=${records:-reports/benchmarks}
    trajectory_record=$records/trajectory_step_cuda_fused.json paper_record=$records/paper_step_cuda.json
    trajectory=(--device cuda --batch 8 --timeout 60)
    paper=(--device cuda --batch 8 --timeout 90 --profile)
    limits=(200 270)
    python -c "import torch, triton; assert torch.cuda.is_available(), 'no CUDA device'; \
print(torch.cuda.get_device_name(), '| torch', torch.__version__, '| triton', triton.__version__)" || exit 1
fi
copy_out() { if [ -n "${OUT:-}" ] && [ -f "$1" ]; then cp "$1" "$OUT/"; fi; }
status=0
timeout "${limits[0]}" python -m tools trajectory-step "${trajectory[@]}" --variants joint exact_fused exact_one_pass \
    --check-exact --profile --record "$trajectory_record" || status=$?
copy_out "$trajectory_record"
timeout "${limits[1]}" python -m tools paper-step "${paper[@]}" "${official[@]}" --record "$paper_record" || status=$?
copy_out "$paper_record"
exit $status
