#!/usr/bin/env bash
# Creates .venv if missing, installs the package, and runs `knlp quickstart`:
# train the SST-2 sentiment LSTM, evaluate on dev, export a SavedModel, predict.
set -euo pipefail
source "$(dirname "$0")/_env.sh"
exec .venv/bin/knlp quickstart "$@"
