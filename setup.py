"""Installs keras_nlp_app and the `knlp` console script (`pip install -e .`)."""

from setuptools import find_packages, setup

TF_FAMILY = [
    "tensorflow>=2.21,<2.22",
    "tensorflow-text>=2.21,<2.22",
    "tensorboard>=2.21,<2.22",
]

setup(
    name="keras_nlp_app",
    version="0.1.0",
    description="From raw text to a trained, inspected, served NLP model with TensorFlow/Keras.",
    packages=find_packages(include=["keras_nlp_app", "keras_nlp_app.*"]),
    python_requires=">=3.10",
    install_requires=TF_FAMILY + [
        "keras>=3.15,<4",
        "keras-hub>=0.32",
        "pyyaml>=6",
        "numpy>=1.26",
        # sequence to sequence: subword vocabularies and the standard metrics
        "sentencepiece>=0.2",
        "sacrebleu>=2.4",
        "jiwer>=3.0",  # word error rate of rescored n-best lists (knlp rescore)
        "rouge-score>=0.1.2",
        # tagging: entity-level scores as conlleval computes them
        "seqeval>=1.2",
        # knlp serve: the TF Serving REST API
        "fastapi>=0.110",
        "uvicorn[standard]>=0.29",  # with uvloop and httptools: faster HTTP handling
        "prometheus-client>=0.20",
        # knlp explain and knlp report: figures inside self-contained pages
        "matplotlib>=3.8",
        # masked-LM pretraining: skip-gram vectors that warm-start the token embedding
        "gensim>=4.3",
        # model.backbone: Hugging Face checkpoint folders and hf:// handles (keras-hub converts
        # their model.safetensors as it loads them)
        "safetensors>=0.4",
    ],
    extras_require={
        # the tests cover tracking and search offline, so they install both extras
        # pytest-xdist: scripts/test.sh runs the suite in two processes (one file per process
        # at a time, so a module's fixture is built once)
        "test": ["pytest>=8", "pytest-xdist>=3.5", "httpx>=0.27", "ruff>=0.6", "wandb>=0.18",
                 "mlflow-skinny>=2.16", "optuna>=4"],
        # train.tracking: wandb | mlflow
        "track": ["wandb>=0.18", "mlflow-skinny>=2.16"],
        # knlp tune: hyperparameter search
        "tune": ["optuna>=4"],
        # KenLM's Python module (compiled on install): the ARPA interop test and the benchmark.
        "kenlm": ["kenlm>=0.2"],
        "bench": ["kenlm>=0.2", "nltk>=3.9", "aiohttp>=3.9", "scikit-learn>=1.3"],
        # fuzzing knlp serve through its OpenAPI schema (docs/serving.md)
        "fuzz": ["schemathesis>=4"],
    },
    entry_points={"console_scripts": ["knlp=keras_nlp_app.cli:main"]},
)
