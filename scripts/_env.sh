# Shared by the scripts: the virtual environment and the data folder.
# Sourced, not run. Creates .venv and installs the package when either is missing.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if [ -z "${KNLP_DATA_DIR:-}" ] && [ -d "$ROOT/../shared/data" ]; then
  export KNLP_DATA_DIR="$ROOT/../shared/data"
fi
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
if ! .venv/bin/python -c "import keras_nlp_app, tensorflow_text, keras_hub, pytest, xdist, seqeval, fastapi, uvicorn, prometheus_client, httpx, ruff, matplotlib, optuna, wandb, mlflow, gensim" 2>/dev/null; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e ".[test]"
fi
