"""Reading SavedModel folders in TF Serving's versioned layout (`MODEL/<N>/saved_model.pb`).

Below tasks, export, inference and serving, so every part finds and loads exports the same way.
"""

import json
import os
import re
import shutil

from keras_nlp_app.errors import UserError
from keras_nlp_app.utils import atomic

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


def read_metadata(model_dir):
    """The export's `assets/metadata.json` (task, labels, tokenizer, config, signatures)."""
    path = os.path.join(model_dir, "assets", "metadata.json")
    if not os.path.exists(path):
        raise UserError(f"{model_dir}: no assets/metadata.json; was it exported by knlp export?")
    try:
        with open(path, encoding="utf-8") as f:
            metadata = json.load(f)
    except (ValueError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not valid JSON ({exc}); export the model again") from None
    if not isinstance(metadata, dict) or "task" not in metadata:
        raise UserError(f"{path}: names no task; export the model again")
    return metadata


def load_saved_model(model_dir):
    """Loads a SavedModel after registering the TensorFlow Text ops it may use. A folder whose
    graph or variables cannot be read (truncated, half-copied, another format) is a UserError
    naming it."""
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers the ops the tokenizer graph uses)

    try:
        return tf.saved_model.load(model_dir)
    except (OSError, ValueError, IndexError, tf.errors.OpError) as exc:
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise UserError(f"{model_dir}: cannot load this SavedModel; is it damaged or only partly "
                        f"copied? ({first})") from None


class NewVersion:
    """The next version folder under a model folder, written through a hidden temporary folder.

    Use as a context manager: write into `.path`; when the block ends without an exception the
    folder is renamed to `<output>/<version>/` in one step, otherwise it is deleted. TF Serving
    ignores the temporary folder's non-numeric name, and a failed export never replaces a good one.
    """

    def __init__(self, output):
        os.makedirs(output, exist_ok=True)
        atomic.sweep_stale(output)  # what killed exports left behind
        self.version = (versions(output) or [0])[-1] + 1
        self.final = os.path.join(output, str(self.version))
        self.path = os.path.join(output, f".tmp-{os.getpid()}-v{self.version}")

    def __enter__(self):
        shutil.rmtree(self.path, ignore_errors=True)
        return self

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is None:
                atomic.sync_tree(self.path)  # on disk before it is visible under its number
                os.replace(self.path, self.final)
        finally:
            shutil.rmtree(self.path, ignore_errors=True)
        if exc is not None:
            atomic.refuse_disk_error(self.final, exc)
        return False
