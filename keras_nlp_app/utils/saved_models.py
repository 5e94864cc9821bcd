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
        raise _unloadable(model_dir, exc) from None


def _unloadable(model_dir, exc):
    first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
    return UserError(f"{model_dir}: cannot load this SavedModel; is it damaged or only partly "
                     f"copied? ({first})")


class SessionSavedModel:
    """A SavedModel loaded into a graph and session of its own, as TF Serving loads one.

    Everything it holds goes with the object, which a server that swaps versions needs:
    `tf.saved_model.load` leaves about 0.8 MiB of registered functions behind per load, freed
    never (tensorflow/tensorflow#45453). `signatures` maps each serving signature to
    `{"inputs": {key: (tf.DType, shape)}, "outputs": {...}}`, shapes with None where unknown.
    """

    def __init__(self, model_dir):
        import tensorflow as tf
        import tensorflow_text  # noqa: F401  (registers the ops the tokenizer graph uses)
        from tensorflow.python.util import deprecation

        self.graph = tf.Graph()
        self.session = tf.compat.v1.Session(graph=self.graph)
        try:  # the TF1 loader is "deprecated" for eager use, not for serving from a session
            with self.graph.as_default(), deprecation.silence():
                meta_graph = tf.compat.v1.saved_model.loader.load(
                    self.session, [tf.saved_model.SERVING], model_dir)
        except (OSError, ValueError, IndexError, RuntimeError, tf.errors.OpError) as exc:
            self.session.close()
            raise _unloadable(model_dir, exc) from None
        self._tensor_names, self.signatures = {}, {}
        for name, signature in meta_graph.signature_def.items():
            if name.startswith("__"):  # the loader's own init op, not a serving signature
                continue
            self._tensor_names[name] = {part: {key: info.name for key, info in getattr(
                signature, part).items()} for part in ("inputs", "outputs")}
            self.signatures[name] = {part: {key: _dtype_and_shape(info) for key, info in getattr(
                signature, part).items()} for part in ("inputs", "outputs")}

    def run(self, signature_name, inputs):
        """`{key: value}` (Python or numpy values) → `{key: numpy array}`; safe from threads."""
        names = self._tensor_names[signature_name]
        return self.session.run(names["outputs"],
                                {names["inputs"][key]: value for key, value in inputs.items()})


def _dtype_and_shape(tensor_info):
    import tensorflow as tf

    shape = tensor_info.tensor_shape
    dims = None if shape.unknown_rank else [None if d.size < 0 else d.size for d in shape.dim]
    return tf.as_dtype(tensor_info.dtype), dims


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
