#!/usr/bin/env bash
# The CoGAN quirk ablation of docs/TRAINING.md: each variant x seed trained for STEPS steps from scratch,
# then scored on 10,000 pairs by `python -m cogan_tf.evaluate` (report.json per run), then one table.
#
#   bash tools/cogan_ablation.sh OUT_DIR [STEPS=546] [SEEDS="0 1 2"] [VARIANTS="faithful loss_on_logits ..."]
#
# Runs go to OUT_DIR/<variant>_s<seed>/; a run whose report.json exists is skipped (re-running resumes).
# DATA_DIR (default data) holds mnist/ with its inverted copy (python download.py mnist && python invert.py).
set -euo pipefail
out=${1:?usage: tools/cogan_ablation.sh OUT_DIR [STEPS] [SEEDS] [VARIANTS]}
steps=${2:-546}
seeds=${3:-"0 1 2"}
variants=${4:-"faithful loss_on_logits bn_per_feature h0_feeds_h1 d_h0_filters_64 corrected"}
here=$(cd "$(dirname "$0")/.." && pwd)
data=${DATA_DIR:-data}
flags_of() {
  case $1 in
    faithful) echo "" ;;
    d_h0_filters_64) echo "--d_h0_filters 64" ;;
    *) echo "--$1" ;;
  esac
}
for v in $variants; do
  for s in $seeds; do
    d=$out/${v}_s$s
    [ -f "$d/report.json" ] && continue
    mkdir -p "$d"
    python "$here/main.py" --is_train True --epoch 1 --max_steps "$steps" --seed "$s" --data_dir "$data" \
      --checkpoint_dir "$d/checkpoint" --sample_dir "$d/samples" --log_dir "$d/logs" --export_dir "$d/export" \
      --evaluate_dir "$d/evaluate" --log_every 100 $(flags_of "$v") > "$d/train.log" 2>&1
    (cd "$here" && python -m cogan_tf.evaluate --saved_model "$d/export/cogan" --data_dir "$data" --dataset mnist \
      --out "$d/report.json") > "$d/evaluate.log" 2>&1
    echo "$v seed $s: done"
  done
done
