#!/usr/bin/env bash
# One short accelerator check (quickstart recipe, a few hundred steps, mixed_float16 on a GPU,
# float32 on CPU). Prints one JSON line with examples/s. Extra flags go to gpu_check.py.
set -euo pipefail
source "$(dirname "$0")/_env.sh"
exec .venv/bin/python scripts/gpu_check.py "$@"
