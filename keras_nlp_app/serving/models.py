"""Served model folders: the versions loaded from each, their signatures and input specs,
status and metadata as TF Serving reports them, and one batcher per signature and version.

A folder's versions come and go while the server runs, as with TF Serving's file-system
source: `ServedModel.refresh` (called by the server's poller) loads the versions the policy
wants, checks each before it takes traffic, and unloads those that left. A version that fails
to load is refused and reported while the others keep serving; it is retried when its files
change.
"""

import gc
import logging
import os
import threading

from keras_nlp_app.errors import UserError
from keras_nlp_app.serving.batching import Batcher
from keras_nlp_app.serving.requests import InputSpec, RequestError
from keras_nlp_app.utils.saved_models import SessionSavedModel, versions

_PREDICT = "tensorflow/serving/predict"
log = logging.getLogger("keras_nlp_app")


def parse_version_policy(text):
    """`latest` (the highest version only, TF Serving's default), `all`, or specific versions
    `N[,M...]`; returns "latest", "all" or a frozenset of ints."""
    if text in ("latest", "all"):
        return text
    try:
        chosen = frozenset(int(part) for part in text.split(","))
    except ValueError:
        raise UserError(f"--version-policy must be latest, all or version numbers such as 1,3; "
                        f"got {text!r}") from None
    if not chosen or min(chosen) < 0:
        raise UserError(f"--version-policy versions must be numbers of 0 or more, got {text!r}")
    return chosen


def _fingerprint(folder):
    """What a version folder holds now (names, sizes, times): a failed load is retried only
    when this changes, e.g. when a copy that was still under way completes."""
    found = []
    for root, _, files in os.walk(folder):
        for name in files:
            try:
                info = os.stat(os.path.join(root, name))
            except OSError:
                continue
            found.append((os.path.relpath(os.path.join(root, name), folder), info.st_size,
                          info.st_mtime_ns))
    return tuple(sorted(found))


class LoadedVersion:
    """One loaded SavedModel version: its signatures, input specs and batchers. It runs in a
    session of its own (`SessionSavedModel`), so an unloaded version frees all it held."""

    def __init__(self, name, version, path, limits, metrics):
        self.name, self.version, self.path = name, version, path
        self.limits, self.metrics = limits, metrics
        self.loaded = SessionSavedModel(path)
        self.signatures = self.loaded.signatures
        if not self.signatures:
            raise UserError(f"{path}: the SavedModel has no signatures to serve")
        self.inputs = {name: {key: InputSpec(key, dtype, shape) for key, (dtype, shape)
                              in signature["inputs"].items()}
                       for name, signature in self.signatures.items()}
        self.batchers = {}
        self._warm_up()

    def _warm_up(self):
        """Runs serving_default once on an empty string when it takes only strings: the check
        that the version answers before it takes traffic (and its graph is ready)."""
        specs = self.inputs.get("serving_default", {})
        if specs and all(spec.dtype.name == "string" for spec in specs.values()):
            self.call("serving_default", {k: [""] if spec.batched else ""
                                          for k, spec in specs.items()})

    def metadata(self):
        def tensor(spec_name, dtype, shape):
            dims = [{"size": str(-1 if d is None else d)} for d in shape or []]
            return {"dtype": f"DT_{dtype.name.upper()}", "tensor_shape": {
                "dim": dims, "unknown_rank": shape is None}, "name": spec_name}

        signature_def = {}
        for name, signature in self.signatures.items():
            signature_def[name] = {
                part: {k: tensor(k, dtype, shape) for k, (dtype, shape) in signature[part].items()}
                for part in ("inputs", "outputs")}
            signature_def[name]["method_name"] = _PREDICT
        return {"model_spec": {"name": self.name, "signature_name": "",
                               "version": str(self.version)},
                "metadata": {"signature_def": {"signature_def": signature_def}}}

    def call(self, signature_name, columns):
        """Runs a signature on python values (lists for batched inputs) → numpy outputs."""
        import numpy as np

        specs = self.inputs[signature_name]
        return self.loaded.run(signature_name, {
            k: np.asarray(v, dtype=specs[k].dtype.as_numpy_dtype) for k, v in columns.items()})

    def batcher(self, signature_name):
        if signature_name not in self.batchers:
            self.batchers[signature_name] = Batcher(
                lambda columns: self.call(signature_name, columns), self.limits.max_batch_size,
                self.limits.batch_timeout_s, self.metrics)
        return self.batchers[signature_name]


def _state(state, error=""):
    return {"state": state, "status": {"error_code": "UNKNOWN" if error else "OK",
                                       "error_message": error}}


class ServedModel:
    """One model folder and the versions of it being served.

    A folder that is itself a SavedModel is served as version 1 (or its folder's number) and
    never changes; a folder of version sub-folders follows `policy` (see
    `parse_version_policy`) each time `refresh` runs.
    """

    def __init__(self, name, folder, limits, metrics, policy="latest"):
        self.name, self.folder, self.limits, self.metrics = name, folder, limits, metrics
        self.policy = policy
        self.fixed = os.path.isfile(os.path.join(folder, "saved_model.pb"))
        self.served = {}  # version -> LoadedVersion taking traffic (replaced, never mutated)
        self.states = {}  # version -> TF Serving's state and status of the version
        self.failed = {}  # version -> the folder fingerprint its load failed on
        self.refresh_lock = threading.Lock()
        self.refresh()
        if not self.served:
            problems = "; ".join(f"version {v}: {s['status']['error_message']}"
                                 for v, s in sorted(self.states.items()) if s["status"]["error_message"])
            raise UserError(f"{folder}: no version could be loaded"
                            + (f" ({problems})" if problems else
                               " (no version folder with a saved_model.pb)"))

    def _on_disk(self):
        """{version: folder} of the complete versions present now."""
        if self.fixed:
            base = os.path.basename(os.path.normpath(self.folder))
            return {int(base) if base.isdigit() else 1: self.folder}
        return {v: os.path.join(self.folder, str(v)) for v in versions(self.folder)
                if os.path.isfile(os.path.join(self.folder, str(v), "saved_model.pb"))}

    def refresh(self):
        """Loads the versions the policy wants that are not served yet (skipping failed ones
        until their files change), then unloads those no longer wanted or gone from disk.
        Under `latest`, newer versions are tried newest first until one loads, so a broken
        newest version leaves the last good one serving. Safe from any thread; one at a time."""
        with self.refresh_lock:
            on_disk = self._on_disk()
            for version in list(self.failed):
                if version not in on_disk or _fingerprint(on_disk[version]) != self.failed[version]:
                    del self.failed[version]
            served = {v: loaded for v, loaded in self.served.items() if v in on_disk}
            if self.policy == "latest":
                newest = max(served, default=-1)
                candidates = sorted((v for v in on_disk if v > newest), reverse=True)
            elif self.policy == "all" or self.fixed:
                candidates = sorted(on_disk)
            else:
                candidates = sorted(v for v in on_disk if v in self.policy)
            for version in candidates:
                if version in served or version in self.failed:
                    continue
                loaded = self._load(version, on_disk[version])
                if loaded is not None:
                    served[version] = loaded
                    if self.policy == "latest" and not self.fixed:
                        break
            if self.policy == "latest" and served:
                served = {max(served): served[max(served)]}
            unloaded = [v for v in self.served if v not in served]
            for version in unloaded:
                log.info("model %s: version %d unloaded", self.name, version)
                self.states[version] = _state("END")
            self.served = served  # one assignment: requests see the old set or the new one
            if unloaded:
                gc.collect()  # a loaded SavedModel is a web of cycles: free it now, not later

    def _load(self, version, path):
        self.states[version] = _state("LOADING")
        try:
            loaded = LoadedVersion(self.name, version, path, self.limits, self.metrics)
        except Exception as exc:  # a broken version: refused, reported, the others serve on
            message = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
            message = message or type(exc).__name__
            log.warning("model %s: version %d refused: %s", self.name, version, message)
            self.failed[version] = _fingerprint(path)
            self.states[version] = _state("END", message)
            return None
        log.info("model %s: version %d available", self.name, version)
        self.states[version] = _state("AVAILABLE")
        return loaded

    @property
    def version(self):
        """The version a request without one gets: the highest served."""
        return max(self.served)

    def resolve(self, version=None):
        """The `LoadedVersion` that answers a request for `version` (None: the highest)."""
        served = self.served
        if version is None:
            return served[max(served)]
        if version not in served:
            raise RequestError(f"model {self.name!r} version {version} is not being served "
                               f"(serving {', '.join(map(str, sorted(served)))})", status=404)
        return served[version]

    def status(self, version=None):
        if version is not None:
            if version not in self.states:
                raise RequestError(f"model {self.name!r} has no version {version}", status=404)
            chosen = [version]
        else:
            chosen = sorted(self.states, reverse=True)
        return {"model_version_status": [{"version": str(v), **self.states[v]} for v in chosen]}

    def metadata(self, version=None):
        return self.resolve(version).metadata()


class ServedRules(LoadedVersion):
    """A rule-based bot (a rules YAML file, keras_nlp_app/rulebot.py) behind the same REST API.

    The server stays stateless, as TF Serving is: each instance is the user's messages so far
    (`messages`, a list of strings), replayed from a fresh state, and the bot answers the last
    (an empty list gets the fallback). Outputs: `reply`, `intent` ("" when the fallback answered) and `slots` (a JSON object).
    """

    _OUTPUTS = ("intent", "reply", "slots")

    def __init__(self, name, path, limits, metrics, policy=None):
        import tensorflow as tf

        from keras_nlp_app.rulebot import load_rules

        del policy  # one version: the rules file
        self.name, self.folder, self.limits, self.metrics = name, path, limits, metrics
        self.path, self.version = path, 1
        self.bot = load_rules(path)
        self.lock = threading.Lock()  # the bot's conversation state is replayed per instance
        self.signatures = {"serving_default": self}
        self.inputs = {"serving_default": {
            "messages": InputSpec("messages", tf.string, [None, None])}}
        self.batchers = {}

    def refresh(self):
        """A rules file is read once; restart the server to serve an edited one."""

    def resolve(self, version=None):
        if version not in (None, 1):
            raise RequestError(f"model {self.name!r} version {version} is not being served "
                               f"(serving 1)", status=404)
        return self

    def status(self, version=None):
        self.resolve(version)
        return {"model_version_status": [{"version": "1", **_state("AVAILABLE")}]}

    def metadata(self, version=None):
        self.resolve(version)

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
