#!/usr/bin/env bash
# Creates .venv if missing and runs the test suite (slow tests excluded; `-m slow` runs them).
# Two worker processes, each taking whole test files: on 2 cores the suite takes about 0.6 of
# its time in one process (much of a TensorFlow test is single-threaded tracing).
# KNLP_TEST_WORKERS sets their number; `-n 0` (or KNLP_TEST_WORKERS=0) runs in this process.
set -euo pipefail
source "$(dirname "$0")/_env.sh"
exec .venv/bin/python -m pytest -n "${KNLP_TEST_WORKERS:-2}" --dist loadfile "$@"
