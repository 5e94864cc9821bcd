#!/usr/bin/env bash
# SST-2 with all labels, three families averaged: the LSTM of configs/sst2_vectors.yaml, Kim's
# CNN and a BiLSTM with attention, each started from the skip-gram vectors and fine-tuned, then
# `knlp ensemble` (one run folder, one SavedModel). docs/RESULTS.md has the figures.
#   knlp vectors imdb_unsup squad_v1.1 aeslc dailydialog ptb --dim 100 --output vectors/general100.txt
#   scripts/sst2_family.sh 1          # train.seed; writes runs/sst2_family_s1 (and its members)
# EXTRA="--set ..." adds overrides to all three (TAG names the runs apart), e.g. the same three
# from random embeddings: EXTRA="--set model.word_vectors=null --set tokenizer.vector_words=0"
set -euo pipefail
source "$(dirname "$0")/_env.sh"
seed=${1:?usage: $0 SEED}
prefix=runs/sst2_family${TAG:+_$TAG}_s${seed}
train_member() {  # family, then its overrides
  local run=${prefix}_$1; shift
  rm -rf "$run"
  .venv/bin/knlp train configs/sst2_vectors.yaml --run-dir "$run" --set train.verbose=0 \
      --set "train.seed=$seed" "$@" ${EXTRA:-} > "$run.log" 2>&1 || { tail -3 "$run.log"; exit 1; }
  runs+=("$run")
}
runs=()
train_member lstm
train_member cnn --set model.name=cnn_classifier --set train.learning_rate=0.001 \
    --set train.decay=none --set train.epochs=3 \
    --set "model.params={embedding_dim: 100, filter_sizes: [3, 4, 5], num_filters: 100, dropout: 0.5}"
train_member bilstm --set model.name=bilstm_classifier --set train.learning_rate=0.001 \
    --set train.decay=none --set train.epochs=3 \
    --set "model.params={embedding_dim: 100, lstm_units: 64, pooling: attention, dropout: 0.3, embedding_dropout: 0.2}"
rm -rf "$prefix"
.venv/bin/knlp ensemble "${runs[@]}" --output "$prefix" > "$prefix.log" 2>&1 || { tail -3 "$prefix.log"; exit 1; }
.venv/bin/python - "$prefix" "${runs[@]}" <<'EOF'
import json, sys
scores = {run: json.load(open(f"{run}/metrics.json"))["accuracy"] for run in sys.argv[1:]}
print(json.dumps({run: round(acc, 4) for run, acc in scores.items()}))
EOF
