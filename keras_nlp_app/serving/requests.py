"""Predict requests of the TF Serving REST API: limits, input specs, parsing and checking a
body against a signature, and formatting the response (row or columnar)."""

import dataclasses
import json

_PREDICT = "tensorflow/serving/predict"

class RequestError(Exception):
    """A client mistake: becomes HTTP `status` with `{"error": message}`."""

    def __init__(self, message, status=400):
        super().__init__(message)
        self.status = status


@dataclasses.dataclass
class Limits:
    max_body_bytes: int = 1 << 20  # larger request bodies are refused
    max_instances: int = 256  # rows in one request
    max_string_chars: int = 20000  # characters in one input string
    max_batch_size: int = 32  # rows in one batched model call
    batch_timeout_s: float = 0.0  # how long a batch waits for more requests (0: it takes what has queued)
    batching: bool = True
    body_timeout_s: float = 30.0  # a request body must arrive whole within this (stalled or trickling clients get 408)


@dataclasses.dataclass
class InputSpec:
    name: str
    dtype: object  # tf.DType
    shape: list  # None for unknown dimensions

    @property
    def batched(self):
        return bool(self.shape) and self.shape[0] is None



def _check_value(spec, value, where):
    """One scalar value of an input, checked against its dtype."""
    if spec.dtype.name == "string":
        if not isinstance(value, str):
            raise RequestError(f"{where}: input {spec.name!r} takes strings, got "
                               f"{type(value).__name__}")
        return value
    if spec.dtype.is_integer:
        if isinstance(value, bool) or not isinstance(value, int):
            raise RequestError(f"{where}: input {spec.name!r} takes an integer, got {value!r}")
        return value
    if spec.dtype.is_floating:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise RequestError(f"{where}: input {spec.name!r} takes a number, got {value!r}")
        return float(value)
    raise RequestError(f"input {spec.name!r} has dtype {spec.dtype.name}, which this server "
                       "cannot fill from JSON")


def _check_nested(spec, value, depth, where, limits):
    """Checks a value of rank `depth` (nested lists) and the string-size limit."""
    if depth == 0:
        value = _check_value(spec, value, where)
        if isinstance(value, str) and len(value) > limits.max_string_chars:
            raise RequestError(f"{where}: input {spec.name!r} is {len(value)} characters long; "
                               f"the limit is {limits.max_string_chars}")
        return value
    if not isinstance(value, list):
        raise RequestError(f"{where}: input {spec.name!r} needs a list (rank {depth}), got "
                           f"{type(value).__name__}")
    return [_check_nested(spec, v, depth - 1, where, limits) for v in value]


def parse_predict(body, specs, limits):
    """(columns, rows, row_format) from a predict request body for the chosen signature."""
    has_instances, has_inputs = "instances" in body, "inputs" in body
    unknown = set(body) - {"instances", "inputs", "signature_name"}
    if unknown:
        raise RequestError(f"unknown field {sorted(unknown)[0]!r}; a predict request has "
                           "'instances' or 'inputs' and optionally 'signature_name'")
    if has_instances == has_inputs:
        raise RequestError("a predict request needs exactly one of 'instances' (row format) "
                           "or 'inputs' (columnar format)")
    batched = [s for s in specs.values() if s.batched]
    if has_instances:
        instances = body["instances"]
        if not isinstance(instances, list):
            raise RequestError("'instances' must be a list")
        if not instances:
            raise RequestError("'instances' is empty")
        if len(instances) > limits.max_instances:
            raise RequestError(f"{len(instances)} instances; the limit is {limits.max_instances}")
        columns = {}
        if len(specs) == 1 and not isinstance(instances[0], dict):
            (spec,) = specs.values()
            rank = len(spec.shape) - 1
            columns[spec.name] = [_check_nested(spec, v, rank, f"instance {i}", limits)
                                  for i, v in enumerate(instances)]
            return columns, len(instances), True
        for i, instance in enumerate(instances):
            if not isinstance(instance, dict):
                raise RequestError(f"instance {i}: with several inputs, each instance is an "
                                   f"object naming them ({', '.join(specs)})")
            _check_names(instance, specs, f"instance {i}")
        for spec in specs.values():
            if spec.batched:
                columns[spec.name] = [_check_nested(spec, inst[spec.name], len(spec.shape) - 1,
                                                    f"instance {i}", limits)
                                      for i, inst in enumerate(instances)]
            else:
                values = {json.dumps(inst[spec.name]) for inst in instances}
                if len(values) > 1:
                    raise RequestError(f"input {spec.name!r} has no batch dimension: every "
                                       "instance must give it the same value (or use 'inputs')")
                columns[spec.name] = _check_nested(spec, instances[0][spec.name],
                                                   len(spec.shape), "instance 0", limits)
        return columns, len(instances), True
    inputs = body["inputs"]
    if not isinstance(inputs, dict):
        if len(specs) != 1:
            raise RequestError(f"'inputs' must be an object naming the inputs ({', '.join(specs)})")
        inputs = {next(iter(specs)): inputs}
    _check_names(inputs, specs, "inputs")
    columns = {spec.name: _check_nested(spec, inputs[spec.name], len(spec.shape), "inputs", limits)
               for spec in specs.values()}
    rows = None
    for spec in batched:
        if not columns[spec.name]:
            raise RequestError(f"input {spec.name!r} is empty")
        if len(columns[spec.name]) > limits.max_instances:
            raise RequestError(f"{len(columns[spec.name])} rows; the limit is {limits.max_instances}")
        if rows is not None and len(columns[spec.name]) != rows:
            raise RequestError("the batched inputs have different numbers of rows")
        rows = len(columns[spec.name])
    return columns, rows or 1, False


def _check_names(given, specs, where):
    missing = [name for name in specs if name not in given]
    extra = [name for name in given if name not in specs]
    if missing or extra:
        problem = f"missing input {missing[0]!r}" if missing else f"unknown input {extra[0]!r}"
        raise RequestError(f"{where}: {problem}; the signature takes {', '.join(specs)}")


def to_json(value):
    """numpy outputs → JSON values (bytes decoded as UTF-8, replacing invalid sequences)."""
    import numpy as np

    if isinstance(value, np.ndarray):
        if value.dtype.kind in ("S", "O"):
            return [to_json(v) for v in value]
        return value.tolist()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.generic):
        return value.item()
    return value


def format_response(outputs, rows, row_format):
    keys = sorted(outputs)
    if row_format:
        if len(keys) == 1:
            return {"predictions": to_json(outputs[keys[0]])}
        return {"predictions": [{k: to_json(outputs[k][i]) for k in keys} for i in range(rows)]}
    if len(keys) == 1:
        return {"outputs": to_json(outputs[keys[0]])}
    return {"outputs": {k: to_json(outputs[k]) for k in keys}}
