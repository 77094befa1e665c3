#!/usr/bin/env bash
# Every row of the real-teacher Table 2 for the three pairs, trained then evaluated: the
# prepared script for a machine with a GPU (DEVICE=cuda), or for a long CPU run.
#   DEVICE=cuda EPOCHS=200 bash benchmarks/table2_all.sh [RUNS_DIR]
# Each training is resumable: rerunning the script continues where it stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-runs/table2}
DEVICE=${DEVICE:-cuda}
EPOCHS=${EPOCHS:-200}
THREADS=${THREADS:-4}
PY=${PY:-.venv/bin/python}
for pair in cense-yamnet cense-efficientat slow-efficientat; do
  batch=64
  [ "$pair" = cense-yamnet ] || batch=16
  common=(--pair "$pair" --epochs "$EPOCHS" --batch-size "$batch" --device "$DEVICE"
          --threads "$THREADS" --cache-dir "$RUNS/features" --resume)
  "$PY" benchmarks/train_table2.py "${common[@]}" --student residual_cnn --method logits \
    --out "$RUNS/$pair/cnn-logits"
  "$PY" benchmarks/train_table2.py "${common[@]}" --student residual_cnn --method mels \
    --out "$RUNS/$pair/cnn-mels"
  "$PY" benchmarks/train_table2.py "${common[@]}" --student residual_cnn --method hybrid \
    --out "$RUNS/$pair/hybrid"
  "$PY" benchmarks/train_table2.py "${common[@]}" --retrain-teacher --out "$RUNS/$pair/retrained"
  "$PY" benchmarks/train_table2.py "${common[@]}" --student coarse_texture --method logits \
    --out "$RUNS/$pair/coarse-texture"
  rows=()
  for row in cnn-logits cnn-mels hybrid retrained coarse-texture; do
    rows+=(--checkpoint "$row=$RUNS/$pair/$row/best.pt")
  done
  "$PY" benchmarks/table2.py --pair "$pair" --cache-dir "$RUNS/features" --device "$DEVICE" \
    "${rows[@]}"
done
