#!/usr/bin/env bash
# A GPU lent for a few minutes: is this package ready for it? Run from the repository's root:
#
#   tools/gpu_check.sh [--out FILE] [--data_dir DIR] [--dry_run]
#
# It prints the device, TensorFlow's CUDA and cuDNN, and nvidia-smi; the device's bench rows (its memory, a
# float32 matmul timed by throughput over many calls, TF32 off and on) and the three models' step rows; 200
# training steps of each model (the CoGAN also with --deterministic and with --tf32: what each costs or buys);
# the equivalence tests under the GPU (float32: NVIDIA_TF32_OVERRIDE=0); a resume checked against the
# uninterrupted run; with two GPUs or more, --strategy mirrored (XLA per replica) and two launched workers
# (NCCL). Everything goes into one file (default gpu_check_<date>.txt). About 5-8 minutes on one GPU (an
# estimate: never run on one here).
# --dry_run prints the commands and exits 0 on any machine. Needs MNIST in --data_dir (python download.py mnist).
set -euo pipefail
cd "$(dirname "$0")/.."

OUT="gpu_check_$(date +%Y%m%d_%H%M%S).txt"
DATA="data"
DRY=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --out) OUT="${2:?--out needs a file}"; shift 2 ;;
    --data_dir) DATA="${2:?--data_dir needs a folder}"; shift 2 ;;
    --dry_run) DRY=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "error: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
PY="${PYTHON:-python}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/gpu_check.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

run() {  # a step of the check: printed, then run (not with --dry_run); a failing step is reported, not fatal
  echo "+ $*"
  [[ -n "$DRY" ]] && return 0
  local start=$SECONDS
  if "$@"; then echo "  [ok, $((SECONDS - start)) s]"; else echo "  [FAILED with status $?, $((SECONDS - start)) s]"; fi
}

if [[ -z "$DRY" ]]; then
  if ! "$PY" -c "import tensorflow as tf, sys; sys.exit(0 if tf.config.list_physical_devices('GPU') else 1)" 2>/dev/null; then
    echo "error: TensorFlow sees no GPU here (install the CUDA extra: pip install -e '.[cuda]'); --dry_run shows the commands" >&2
    exit 2
  fi
  if [[ ! -d "$DATA/mnist" ]]; then
    echo "error: $DATA/mnist: no MNIST (python download.py mnist, or --data_dir DIR)" >&2
    exit 2
  fi
  exec > >(tee "$OUT") 2>&1
fi

TRAIN=("$PY" main.py --is_train True --data_dir "$DATA" --save_every 0 --sample_every_epochs 0
       --sample_dir "$WORK/samples" --log_dir "$WORK/logs" --export_dir "$WORK/export")
echo "== gpu_check $(date -Iseconds) on $(hostname)"
echo "== the device"
run nvidia-smi
run "$PY" -c "from cogan_tf import device; import tensorflow as tf
print(device.versions()); print([device.describe_device(d.name.split('device:')[-1]) for d in tf.config.list_logical_devices('GPU')])"
echo "== bench: the device's rows (memory, matmul throughput, TF32 off and on), then the step rows"
run "$PY" -m cogan_tf.bench --device_rows --out "$WORK/device_rows.json"
run "$PY" -m cogan_tf.bench --cogan_variants straightforward,deconv_heads,unfused_bn,xla,bfloat16,float16 \
    --clustergan_variants paper --steps 50 --out "$WORK/bench.json"
echo "== 200 steps of each model (the rate line every 100 steps)"
run "${TRAIN[@]}" --max_steps 200 --model cogan --checkpoint_dir "$WORK/ck_cogan"
run "${TRAIN[@]}" --max_steps 200 --model cogan --deterministic --checkpoint_dir "$WORK/ck_cogan_det"
run "${TRAIN[@]}" --max_steps 200 --model cogan --tf32 --checkpoint_dir "$WORK/ck_cogan_tf32"
run "${TRAIN[@]}" --max_steps 200 --model vanilla --checkpoint_dir "$WORK/ck_vanilla"
run "${TRAIN[@]}" --max_steps 200 --model clustergan --dataset mnist --checkpoint_dir "$WORK/ck_clustergan"
run "${TRAIN[@]}" --max_steps 200 --model clustergan --recipe paper --val_size 0 --checkpoint_dir "$WORK/ck_paper"
echo "== the equivalence tests under the GPU, in float32"
run env NVIDIA_TF32_OVERRIDE=0 "$PY" -m pytest -q -m "slow or not slow" tests/test_cogan_fast.py tests/test_layers.py \
    tests/test_levers.py tests/test_mixed_precision.py tests/test_clustergan_networks.py -k "equal or written or levers or casts"
echo "== a resume: 40 steps in one run against 20 + 20, both --deterministic; the step-40 lines must be equal"
run "${TRAIN[@]}" --model cogan --deterministic --max_steps 40 --checkpoint_dir "$WORK/ck_whole" --log_every 40 \
    | tee "$WORK/whole.log"
run "${TRAIN[@]}" --model cogan --deterministic --max_steps 20 --checkpoint_dir "$WORK/ck_parts" --log_every 20
run "${TRAIN[@]}" --model cogan --deterministic --max_steps 40 --checkpoint_dir "$WORK/ck_parts" --log_every 40 \
    | tee "$WORK/parts.log"
if [[ -z "$DRY" ]]; then
  line40() { grep -h "^Epoch:.*\[  39/" "$1" | sed 's/time: [0-9.]*, //' || true; }
  whole=$(line40 "$WORK/whole.log"); parts=$(line40 "$WORK/parts.log")
  if [[ -n "$whole" && "$whole" == "$parts" ]]; then echo "  resume: step 40 bit-equal ($whole)"; else
    echo "  resume: DIFFERENT: '$whole' vs '$parts'"; fi
fi
GPUS=$([[ -n "$DRY" ]] && echo 2 || "$PY" -c "import tensorflow as tf; print(len(tf.config.list_physical_devices('GPU')))")
if [[ "$GPUS" -ge 2 ]]; then
  echo "== $GPUS GPUs: --strategy mirrored, with XLA per replica and with synchronised BatchNorm"
  run "${TRAIN[@]}" --model cogan --strategy mirrored --jit_compile --max_steps 100 --checkpoint_dir "$WORK/ck_mirrored_xla"
  run "${TRAIN[@]}" --model cogan --strategy mirrored --sync_batchnorm --max_steps 100 --checkpoint_dir "$WORK/ck_mirrored"
  run "${TRAIN[@]}" --model clustergan --dataset mnist --strategy mirrored --max_steps 100 \
      --checkpoint_dir "$WORK/ck_mirrored_clustergan"
  echo "== two local workers, one GPU each (the launcher's CUDA_VISIBLE_DEVICES; NCCL all-reduce)"
  run "$PY" -m cogan_tf.launch --workers 2 -- --data_dir "$DATA" --max_steps 100 --save_every 0 --sync_batchnorm \
      --checkpoint_dir "$WORK/ck_workers" --sample_dir "$WORK/samples_w" --log_dir "$WORK/logs_w" \
      --export_dir "$WORK/export_w"
fi
echo "== done in ${SECONDS} s${DRY:+ (dry run: nothing was run; a real run writes all of this to $OUT)}"
[[ -n "$DRY" ]] || echo "wrote $OUT"
