#!/usr/bin/env bash
# One short accelerator check: each task's recipe (classification, tagging, LM, seq2seq) for a
# few hundred steps, fp32 without XLA and then mixed precision with XLA (mixed_float16 on a GPU,
# bfloat16 on CPU). Prints JSON lines with examples/s and tokens/s. Flags go to gpu_check.py.
set -euo pipefail
source "$(dirname "$0")/_env.sh"
exec .venv/bin/python scripts/gpu_check.py "$@"
