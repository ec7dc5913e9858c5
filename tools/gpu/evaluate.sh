#!/usr/bin/env bash
# `evaluate` at paper shape on one GPU, every released layout (Motionformer, X-ViT, TokShift, CAST): the paper-shape
# smoke (tests/experiments/harness/test_evaluate_smoke.py) with `--evaluate-device cuda`, each entry at its own crop
# and views on generated frames of the published size, random weights saved in the authors' layout, through the real
# path (released reader, data module, multi-view test on a Lightning Trainer, record). The outcome of each layout goes
# to DIR/evaluate_cuda.xml (JUnit) when all have run, and line by line, as each finishes, to DIR/evaluate_cuda.log;
# both also to $OUT where it is set (a lent machine's output folder), the log as it is written.
#
#   tools/gpu/evaluate.sh [--carry FOLDER] [--records DIR]    FOLDER: .gpu/evaluate (tools/gpu/carry.sh), DIR: /tmp
#   tools/gpu/evaluate.sh --collect-only [--records DIR]      no GPU: the same command collects its tests, runs none
#
# A lent machine lacks PyAV, pytorchvideo and pytest: FOLDER's tarball is extracted into ~/gpu-site first. Run it in
# a `run` call of its own with only FOLDER carried: with the authors' checkouts beside it the carry passes 64 MiB.
set -uo pipefail
cd "$(dirname "$0")/../.."
carry=.gpu/evaluate
records=/tmp
collect=0
while [ $# -gt 0 ]; do
    case "$1" in
        --carry) carry="$2"; shift 2 ;;
        --records) records="$2"; shift 2 ;;
        --collect-only) collect=1; shift ;;
        *) echo "tools/gpu/evaluate.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
if [ -d "$carry" ]; then
    site=$HOME/gpu-site
    mkdir -p "$site" && tar -C "$site" -xJf "$carry/site.tar.xz" || exit 1
    export PYTHONPATH=$site${PYTHONPATH:+:$PYTHONPATH}
fi
smoke=(python -m pytest tests/experiments/harness/test_evaluate_smoke.py -m slow --evaluate-device cuda -v \
    -p no:cacheprovider)
if [ "$collect" = 1 ]; then
    "${smoke[@]}" --co -q | tee "$records/evaluate_collected.log"
    exit "${PIPESTATUS[0]}"
fi
python -c "import torch, av, pytorchvideo.transforms, pytest, xdist; assert torch.cuda.is_available(), 'no CUDA device'; \
print(torch.cuda.get_device_name(), '| torch', torch.__version__, '| av', av.__version__)" || exit 1
export TRITON_INTERPRET=0  # compiled kernels (tests/conftest.py chooses the interpreter unless told)
logs=("$records/evaluate_cuda.log")
if [ -n "${OUT:-}" ]; then logs+=("$OUT/evaluate_cuda.log"); fi
timeout 420 "${smoke[@]}" --junitxml "$records/evaluate_cuda.xml" 2>&1 | tee "${logs[@]}"
status=${PIPESTATUS[0]}
if [ -n "${OUT:-}" ] && [ -f "$records/evaluate_cuda.xml" ]; then cp "$records/evaluate_cuda.xml" "$OUT/"; fi
exit $status
