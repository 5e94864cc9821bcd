"""keras_nlp_app: from raw text to a trained, inspected, served NLP model.

TensorFlow is imported lazily by the modules that need it, so `knlp --help` and the n-gram
verbs start fast. Public entry points:

- `keras_nlp_app.config.load_config` — YAML recipes into dataclass configs.
- `keras_nlp_app.training.train.train` — train a config, returns the run folder.
- `keras_nlp_app.export.saved_model.export_run` — export a run as a versioned SavedModel.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
