"""Export a run as a SavedModel that takes raw strings, in TF Serving's versioned layout.

`export_run(run_dir, output)` writes `output/<N>/` (N = the highest existing version + 1):
a SavedModel whose `serving_default(text: string[B])` returns the task's outputs, plus
`assets/metadata.json` and the tokenizer assets. It needs only TensorFlow and TensorFlow Text to
load. The export is written to a hidden temporary folder, loaded back and checked against the
trained model, and only then renamed into place, so a failed export never replaces a good one.
"""

import datetime
import json
import os
import re
import shutil

from keras_nlp_app.errors import UserError

_VERSION = re.compile(r"^\d+$")


def versions(folder):
    """Numeric version sub-folders of `folder`, ascending."""
    if not os.path.isdir(folder):
        return []
    return sorted(int(name) for name in os.listdir(folder)
                  if _VERSION.match(name) and os.path.isdir(os.path.join(folder, name)))


def resolve_model_dir(path):
    """A SavedModel folder from a version folder or its parent (then the highest version)."""
    if os.path.isfile(os.path.join(path, "saved_model.pb")):
        return path
    found = versions(path)
    for version in reversed(found):
        candidate = os.path.join(path, str(version))
        if os.path.isfile(os.path.join(candidate, "saved_model.pb")):
            return candidate
    if not os.path.exists(path):
        raise UserError(f"{path}: no such model folder")
    raise UserError(f"{path}: not a SavedModel folder and holds no version folder with one")


class NewVersion:
    """The next version folder under a model folder, written through a hidden temporary folder.

    Use as a context manager: write into `.path`; when the block ends without an exception the
    folder is renamed to `<output>/<version>/` in one step, otherwise it is deleted. TF Serving
    ignores the temporary folder's non-numeric name, and a failed export never replaces a good one.
    """

    def __init__(self, output):
        os.makedirs(output, exist_ok=True)
        self.version = (versions(output) or [0])[-1] + 1
        self.final = os.path.join(output, str(self.version))
        self.path = os.path.join(output, f".tmp-{self.version}-{os.getpid()}")

    def __enter__(self):
        shutil.rmtree(self.path, ignore_errors=True)
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            os.replace(self.path, self.final)
        shutil.rmtree(self.path, ignore_errors=True)
        return False


def read_metadata(model_dir):
    path = os.path.join(model_dir, "assets", "metadata.json")
    if not os.path.exists(path):
        raise UserError(f"{model_dir}: no assets/metadata.json; was it exported by knlp export?")
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def load_saved_model(model_dir):
    """Loads a SavedModel after registering the TensorFlow Text ops it may use."""
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers the ops the tokenizer graph uses)

    return tf.saved_model.load(model_dir)


def _versions_info():
    import keras
    import tensorflow as tf
    import tensorflow_text

    from keras_nlp_app import __version__

    return {"keras_nlp_app": __version__, "tensorflow": tf.__version__,
            "tensorflow_text": tensorflow_text.__version__, "keras": keras.__version__}


def _build_archive(run):
    import keras
    import tensorflow as tf

    run.preprocessor(tf.constant(["build"]))  # Keras tracks only built layers
    archive = keras.export.ExportArchive()
    archive.track(run.model)
    archive.track(run.preprocessor)
    archive.add_endpoint(
        "serving_default", run.serve,
        input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    return archive


def reloaded_outputs(model_dir):
    """The serving_default signature's output specs of a written SavedModel."""
    import tensorflow as tf

    return tf.saved_model.load(model_dir).signatures["serving_default"].structured_outputs


def export_run(run_dir, output, check_texts=None):
    """Exports a run folder's best model into the next version folder under `output`.

    Args:
        run_dir: a folder written by `knlp train`.
        output: the model's folder, e.g. `saved_models/sentiment`; gets `<N>/`.
        check_texts: texts whose predictions must match between the trained model and the
            reloaded export (a few defaults are used when None).

    Returns:
        The new version folder.
    """
    import numpy as np
    import tensorflow as tf

    from keras_nlp_app.config import config_to_dict
    from keras_nlp_app.tasks import TASKS
    from keras_nlp_app.text.tokenizers import save_tokenizer
    from keras_nlp_app.training.train import restore_run

    run = restore_run(run_dir)
    cfg, preprocessor, model, space = run.cfg, run.preprocessor, run.model, run.space
    task = TASKS[cfg.task]
    with NewVersion(output) as target:
        archive = _build_archive(run)
        archive.write_out(target.path, verbose=False)
        assets = os.path.join(target.path, "assets")
        save_tokenizer(preprocessor.tokenizer, assets)
        outputs = {name: f"{spec.dtype.name}{spec.shape.as_list()}".replace("None", "B")
                   for name, spec in reloaded_outputs(target.path).items()}
        metadata = {
            "task": cfg.task, "labels": space.labels, "multi_label": space.multi_label,
            "thresholds": space.thresholds, "version": target.version,
            "exported_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "run_dir": os.path.abspath(run_dir),
            "signature": {"serving_default": {"inputs": {"text": "string[B]"}, "outputs": outputs}},
            "tokenizer": {"kind": preprocessor.tokenizer.kind,
                          "lowercase": preprocessor.tokenizer.lowercase,
                          "vocabulary_size": preprocessor.tokenizer.vocabulary_size,
                          "sequence_length": preprocessor.sequence_length,
                          "truncation": preprocessor.truncation, "ngrams": preprocessor.ngrams,
                          "ngram_buckets": preprocessor.ngram_buckets},
            "data": {"text_field": cfg.data.text_field, "label_field": cfg.data.label_field},
            "config": config_to_dict(cfg),
            "versions": _versions_info(),
        }
        with open(os.path.join(assets, "metadata.json"), "w", encoding="utf-8") as f:
            json.dump(metadata, f, indent=2, ensure_ascii=False)
        texts = check_texts or ["a great film", "a dull , lifeless film", "", "ünïcödé ✓ 映画"]
        expected = task.predict(preprocessor, model, texts)
        reloaded = load_saved_model(target.path)
        got = reloaded.signatures["serving_default"](text=tf.constant(texts))["probabilities"]
        if not np.allclose(expected, got.numpy(), atol=1e-5):
            raise RuntimeError("the exported model's predictions differ from the trained model's")
    return target.final
