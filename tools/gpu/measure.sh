#!/usr/bin/env bash
# The repository's GPU claims measured in one run, each record written as soon as it is measured:
#   1. trajectory attention's training step (ViT-B/16, 16x224x224, bf16, batch 8) against joint attention's: joint,
#      both stages in Triton kernels (stage_two_kernel="fused_stages") and the fused stage two (the GPU default),
#      eager, then joint and both stages again with every step one replayed CUDA graph; first each Triton path is
#      checked against the literal Eq. 4-6 on the device (`python -m tools trajectory-step`);
#   2. `evaluate` at paper shape for every released layout (tools/gpu/evaluate.sh), each layout's outcome logged as
#      it finishes;
#   3. with --paper-step (implied by --official-code): each paper's whole training step and peak memory, ours against
#      the authors' code, same weights, batch, precision and optimizer (`python -m tools paper-step`), with our logits
#      against theirs on the device.
#
#   tools/gpu/measure.sh [--carry FOLDER] [--records DIR]     GPU, parts 1 and 2: at most 8 minutes; DIR:
#                                                              reports/benchmarks (part 2's log and JUnit file: /tmp)
#   tools/gpu/measure.sh --paper-step [--official-code FOLDER] [--xvit-shim FILE] [...]   also part 3: 4.5 more
#   tools/gpu/measure.sh --cpu-check [--paper-step] [...]     CPU: part 1 at a tiny shape / batch 1, the kernels
#                       through Triton's interpreter, no CUDA graph; part 2 collected, not run (its tests run on the
#                       CPU in the suite's slow part); part 3 at batch 1: that it runs end to end, not a measurement
#
# FOLDER (part 2, default .gpu/evaluate): what a lent machine lacks for `evaluate` (tools/gpu/carry.sh); carry it
# alone, not beside the authors' checkouts (OFFICIAL: Motionformer, video-transformers, TokShift-Transformer, CAST,
# kept outside the repository's tracked files; without it each paper's step is ours alone): together they pass the
# 64 MiB a `run` carries. Each part has its own time limit (1: 230 s, 2: 210 s, 3: 270 s). Needs torch with CUDA and
# Triton, timm, einops, tabulate, pydantic; for the authors' code also fvcore, iopath, yacs, ml_collections,
# simplejson. Where $OUT is set (a lent machine's output folder) a copy of each record goes there. Then, in the
# repository: `python -m reports readme` renders them.
set -uo pipefail
cd "$(dirname "$0")/../.."
check=0
paper_step=0
official=()
records=""
carry=.gpu/evaluate
while [ $# -gt 0 ]; do
    case "$1" in
        --cpu-check) check=1; shift ;;
        --paper-step) paper_step=1; shift ;;
        --official-code|--xvit-shim) official+=("$1" "$2"); paper_step=1; shift 2 ;;
        --carry) carry="$2"; shift 2 ;;
        --records) records="$2"; shift 2 ;;
        *) echo "tools/gpu/measure.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
variants=(joint exact_fused_stages exact_fused)
if [ "$check" = 1 ]; then
    export TRITON_INTERPRET=1
    records=${records:-/tmp}
    trajectory_record=$records/trajectory_step_cpu_check.json paper_record=$records/paper_step_cpu_check.json
    trajectory=(--device cpu --shape tiny --batch 1 --warmup 1 --steps 1 --timeout 600)
    evaluate=(--collect-only --records "$records")
    paper=(--cpu-check --timeout 900)  # no profile: the trajectory part checks the profiler; a CPU is slow
    limits=(1800 300 3600)
else
    unset TRITON_INTERPRET  # compiled kernels, not the interpreter the CPU tests use
    records=${records:-reports/benchmarks}
    trajectory_record=$records/trajectory_step_cuda_fused_stages.json paper_record=$records/paper_step_cuda.json
    # 90 s a variant: the first to use a Triton kernel compiles it (the later ones read Triton's cache)
    trajectory=(--device cuda --batch 8 --timeout 90 --cuda-graph joint exact_fused_stages)
    evaluate=(--carry "$carry" --records /tmp)
    paper=(--device cuda --batch 8 --timeout 90 --profile)
    limits=(230 210 270)
    python -c "import torch, triton; assert torch.cuda.is_available(), 'no CUDA device'; \
print(torch.cuda.get_device_name(), '| torch', torch.__version__, '| triton', triton.__version__)" || exit 1
fi
copy_out() { if [ -n "${OUT:-}" ] && [ -f "$1" ]; then cp "$1" "$OUT/"; fi; }
status=0
timeout "${limits[0]}" python -m tools trajectory-step "${trajectory[@]}" --variants "${variants[@]}" \
    --check-exact --profile --record "$trajectory_record" || status=$?
copy_out "$trajectory_record"
timeout "${limits[1]}" tools/gpu/evaluate.sh "${evaluate[@]}" || status=$?
if [ "$paper_step" = 1 ]; then
    timeout "${limits[2]}" python -m tools paper-step "${paper[@]}" "${official[@]}" --record "$paper_record" \
        || status=$?
    copy_out "$paper_record"
fi
exit $status
