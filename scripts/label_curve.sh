#!/usr/bin/env bash
# The SST-2 label-efficiency curve of docs/RESULTS.md: seeded random subsets of the training
# labels, from scratch (configs/sst2_lstm.yaml, or another recipe as $SCRATCH) and fine-tuned
# from the pretrained preset (configs/sst2_finetune.yaml; pretrain it first with
# `knlp train configs/pretrain_imdb.yaml`). Prints one JSON line per run.
#   scripts/label_curve.sh scratch 100 1 2 3      # recipe, labels, seeds...
#   scripts/label_curve.sh finetune 1000 1 2 3
# SCRATCH=configs/sst2_nb.yaml TAG=nb EPOCHS=1 picks another recipe; EXTRA="--set ..." adds
# overrides (TAG names the runs apart).
set -euo pipefail
source "$(dirname "$0")/_env.sh"
kind=$1; labels=$2; shift 2
case $kind in
  scratch) recipe=${SCRATCH:-configs/sst2_lstm.yaml} ;;
  finetune) recipe=configs/sst2_finetune.yaml ;;
  *) echo "usage: $0 scratch|finetune LABELS SEED..." >&2; exit 2 ;;
esac
# enough updates for small subsets: about the same number of steps at every size
case $labels in
  100) epochs=30 ;; 1000) epochs=10 ;; 10000) epochs=4 ;; *) epochs=3 ;;
esac
epochs=${EPOCHS:-$epochs}  # EPOCHS=1 for one-pass models (Naive Bayes)
for seed in "$@"; do
  name=sst2_${kind}${TAG:+_$TAG}_${labels}_s${seed}
  subset=()
  if [ "$labels" != all ]; then subset=(--set "data.train_subset=$labels" --set "data.subset_seed=$seed"); fi
  rm -rf "runs/$name"
  .venv/bin/knlp train "$recipe" --run-dir "runs/$name" "${subset[@]}" --set "train.epochs=$epochs" \
      --set train.verbose=0 ${EXTRA:-} > "runs/$name.log" 2>&1 || { tail -3 "runs/$name.log"; exit 1; }
  .venv/bin/python -c "import json,sys; m=json.load(open('runs/$name/metrics.json')); print(json.dumps({'run': '$name', 'accuracy': round(m['accuracy'], 4), 'macro_f1': round(m['macro_f1'], 4), 'train_examples': m['train_examples'], 'epochs': len(m['history']), 'trainable_parameters': m['trainable_parameters'], 'parameters': m['parameters'], 'train_seconds': m['train_seconds']}))"
done
