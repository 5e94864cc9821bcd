#!/usr/bin/env bash
# Creates .venv if missing and runs the test suite (slow tests excluded; `-m slow` runs them).
set -euo pipefail
source "$(dirname "$0")/_env.sh"
exec .venv/bin/python -m pytest "$@"
