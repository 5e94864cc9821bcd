"""A served model folder: the loaded version, its signatures and input specs, status and
metadata as TF Serving reports them, and one batcher per signature."""

import os

from keras_nlp_app.serving.batching import Batcher
from keras_nlp_app.serving.requests import InputSpec, RequestError
from keras_nlp_app.utils.saved_models import load_saved_model, resolve_model_dir, versions

_PREDICT = "tensorflow/serving/predict"


class ServedModel:
    """One model folder: its loaded version, signatures, input specs and batchers."""

    def __init__(self, name, folder, limits, metrics):
        self.name, self.folder, self.limits, self.metrics = name, folder, limits, metrics
        self.path = resolve_model_dir(folder)
        base = os.path.basename(os.path.normpath(self.path))
        self.version = int(base) if base.isdigit() else 1
        self.available = versions(folder) or [self.version]
        self.loaded = load_saved_model(self.path)
        self.signatures = dict(self.loaded.signatures)
        self.inputs = {name: self._input_specs(fn) for name, fn in self.signatures.items()}
        self.batchers = {}

    @staticmethod
    def _input_specs(function):
        specs = function.structured_input_signature[1]
        return {key: InputSpec(key, spec.dtype, spec.shape.as_list()) for key, spec in specs.items()}

    def status(self, version=None):
        self.check_version(version)
        return {"model_version_status": [{
            "version": str(self.version), "state": "AVAILABLE",
            "status": {"error_code": "OK", "error_message": ""}}]}

    def check_version(self, version):
        if version is not None and version != self.version:
            raise RequestError(f"model {self.name!r} version {version} is not being served "
                               f"(serving version {self.version})", status=404)

    def metadata(self, version=None):
        self.check_version(version)

        def tensor(spec_name, dtype, shape):
            dims = [{"size": str(-1 if d is None else d)} for d in shape]
            return {"dtype": f"DT_{dtype.name.upper()}", "tensor_shape": {
                "dim": dims, "unknown_rank": False}, "name": spec_name}

        signature_def = {}
        for name, function in self.signatures.items():
            outputs = function.structured_outputs
            signature_def[name] = {
                "inputs": {k: tensor(k, s.dtype, s.shape) for k, s in self.inputs[name].items()},
                "outputs": {k: tensor(k, t.dtype, t.shape.as_list()) for k, t in outputs.items()},
                "method_name": _PREDICT}
        return {"model_spec": {"name": self.name, "signature_name": "",
                               "version": str(self.version)},
                "metadata": {"signature_def": {"signature_def": signature_def}}}

    def call(self, signature_name, columns):
        """Runs a signature on python values (lists for batched inputs) → numpy outputs."""
        import tensorflow as tf

        specs = self.inputs[signature_name]
        tensors = {k: tf.constant(v, dtype=specs[k].dtype) for k, v in columns.items()}
        outputs = self.signatures[signature_name](**tensors)
        return {k: v.numpy() for k, v in outputs.items()}

    def batcher(self, signature_name):
        if signature_name not in self.batchers:
            self.batchers[signature_name] = Batcher(
                lambda columns: self.call(signature_name, columns), self.limits.max_batch_size,
                self.limits.batch_timeout_s, self.metrics)
        return self.batchers[signature_name]


class ServedRules(ServedModel):
    """A rule-based bot (a rules YAML file, keras_nlp_app/rulebot.py) behind the same REST API.

    The server stays stateless, as TF Serving is: each instance is the user's messages so far
    (`messages`, a list of strings), replayed from a fresh state, and the bot answers the last
    (an empty list gets the fallback). Outputs: `reply`, `intent` ("" when the fallback answered) and `slots` (a JSON object).
    """

    _OUTPUTS = ("intent", "reply", "slots")

    def __init__(self, name, path, limits, metrics):
        import threading

        import tensorflow as tf

        from keras_nlp_app.rulebot import load_rules

        self.name, self.folder, self.limits, self.metrics = name, path, limits, metrics
        self.path, self.version, self.available = path, 1, [1]
        self.bot = load_rules(path)
        self.lock = threading.Lock()  # the bot's conversation state is replayed per instance
        self.signatures = {"serving_default": self}
        self.inputs = {"serving_default": {
            "messages": InputSpec("messages", tf.string, [None, None])}}
        self.batchers = {}

    def metadata(self, version=None):
        self.check_version(version)

        def tensor(spec_name, shape):
            return {"dtype": "DT_STRING", "tensor_shape": {
                "dim": [{"size": "-1"} for _ in shape], "unknown_rank": False}, "name": spec_name}

        signature_def = {"serving_default": {
            "inputs": {"messages": tensor("messages", [None, None])},
            "outputs": {k: tensor(k, [None]) for k in self._OUTPUTS}, "method_name": _PREDICT}}
        return {"model_spec": {"name": self.name, "signature_name": "", "version": "1"},
                "metadata": {"signature_def": {"signature_def": signature_def}}}

    def call(self, signature_name, columns):
        import json

        import numpy as np

        outputs = {k: [] for k in self._OUTPUTS}
        with self.lock:
            for messages in columns["messages"]:
                turn = self.bot.reply(messages)  # None for an empty conversation
                outputs["reply"].append(turn.text if turn else self.bot.fallback[0])
                outputs["intent"].append(turn.intent or "" if turn else "")
                outputs["slots"].append(json.dumps(turn.slots if turn else {}, ensure_ascii=False))
        return {k: np.array(v, dtype=object) for k, v in outputs.items()}
