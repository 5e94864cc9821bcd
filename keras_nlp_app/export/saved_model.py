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

from keras_nlp_app import runs
from keras_nlp_app.config import config_to_dict
from keras_nlp_app.training import tracking
from keras_nlp_app.utils import atomic
from keras_nlp_app.utils.saved_models import NewVersion, load_saved_model


def graph_ops(model_dir):
    """Every op type in a SavedModel's graph and its functions, sorted."""
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    with open(os.path.join(model_dir, "saved_model.pb"), "rb") as f:
        proto.ParseFromString(f.read())
    ops = set()
    for graph in proto.meta_graphs:
        ops.update(node.op for node in graph.graph_def.node)
        for function in graph.graph_def.library.function:
            ops.update(node.op for node in function.node_def)
    return sorted(ops)


_CORE_CHECK = """
import json, sys
from tensorflow.python.framework import op_def_registry
print(json.dumps([op for op in json.loads(sys.stdin.read()) if op_def_registry.get(op) is None]))
"""


def non_core_ops(model_dir):
    """The ops a SavedModel uses that core TensorFlow does not register (TensorFlow Text's):
    what a TF Serving build must include. Checked in a fresh process that imports only
    TensorFlow, since this one has loaded TensorFlow Text."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", _CORE_CHECK], input=json.dumps(graph_ops(model_dir)),
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    if done.returncode != 0:
        raise RuntimeError(f"the op audit failed: {done.stderr.strip()[-500:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _versions_info():
    import keras
    import tensorflow as tf
    import tensorflow_text

    from keras_nlp_app import __version__

    return {"keras_nlp_app": __version__, "tensorflow": tf.__version__,
            "tensorflow_text": tensorflow_text.__version__, "keras": keras.__version__}


def _build_archive(run, endpoints):
    import keras
    import tensorflow as tf

    archive = keras.export.ExportArchive()
    for part in (run, *run.companions.values()):
        part.preprocessor(tf.constant(["build"]))  # Keras tracks only built layers
        archive.track(part.model)
        archive.track(part.preprocessor)
    for name, (function, signature) in endpoints.items():
        archive.add_endpoint(name, function, input_signature=signature)
    return archive


def _describe(spec):
    return f"{spec.dtype.name}{spec.shape.as_list()}".replace("None", "B")


def export_run(run_dir, output, check_texts=None, companions=None):
    """Exports a run folder's best model into the next version folder under `output`.

    The task says which signatures to write (`export_signatures`), what to add to the metadata
    (`export_metadata`) and how to check the reloaded export against the trained model
    (`check_export`).

    Args:
        run_dir: a folder written by `knlp train`.
        output: the model's folder, e.g. `saved_models/sentiment`; gets `<N>/`.
        check_texts: texts whose outputs must match between the trained model and the reloaded
            export (the task's defaults when None).
        companions: `{role: run folder}` of runs the task chains into extra signatures (a
            relation run's `tagger` gives it `extract`); their models go into the export too.

    Returns:
        The new version folder.
    """
    run = runs.restore_run(run_dir)
    run.companions = {role: runs.restore_run(path) for role, path in (companions or {}).items()}
    task = run.task
    endpoints = task.export_signatures(run)
    with NewVersion(output) as target:
        _build_archive(run, endpoints).write_out(target.path, verbose=False)
        assets = os.path.join(target.path, "assets")
        run.preprocessor.save_assets(assets)
        reloaded = load_saved_model(target.path)
        signatures = {
            name: {"inputs": {spec.name: _describe(spec)
                              for spec in reloaded.signatures[name].structured_input_signature[1].values()},
                   "outputs": {key: _describe(spec) for key, spec in
                               reloaded.signatures[name].structured_outputs.items()}}
            for name in endpoints}
        metadata = {
            "task": run.cfg.task, "version": target.version,
            "exported_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "run_dir": os.path.abspath(run_dir),
            "companions": {role: os.path.abspath(path) for role, path in (companions or {}).items()},
            "signature": signatures,
            **task.export_metadata(run),
            "config": config_to_dict(run.cfg),
            "versions": _versions_info(),
        }
        metadata["non_core_ops"] = non_core_ops(target.path)
        atomic.write_json(os.path.join(assets, "metadata.json"), metadata, ensure_ascii=False)
        task.check_export(run, reloaded, check_texts)
    tracking.log_export(run_dir, target.final, run.cfg)
    return target.final
