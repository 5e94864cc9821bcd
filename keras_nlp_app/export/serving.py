"""`knlp serve`: the TensorFlow Serving REST API over exported SavedModels (FastAPI + uvicorn).

A client written against this server moves to TF Serving unchanged, and the same model folder
works in both:

    GET  /v1/models/NAME[/versions/N]            status
    GET  /v1/models/NAME[/versions/N]/metadata   signatures: inputs and outputs
    POST /v1/models/NAME[/versions/N]:predict    {"instances": [...]} (row format) or
                                                 {"inputs": ...} (columnar), "signature_name"
    GET  /healthz, GET /metrics (Prometheus text format)

A model folder holds version folders (`MODEL_DIR/1/`, `MODEL_DIR/2/`); the highest is loaded,
as TF Serving does. Requests to a signature whose inputs all have a batch dimension are grouped
by a `Batcher` into one model call (at most `max_batch_size` rows, waiting at most
`batch_timeout_s` for more). Client mistakes are HTTP 400 with `{"error": "..."}` and unknown
models or versions 404; nothing a client sends produces a 500.
"""

import asyncio
import dataclasses
import json
import os
import re
import time

from keras_nlp_app.errors import UserError

DEFAULT_PORT = 8501
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


@dataclasses.dataclass
class InputSpec:
    name: str
    dtype: object  # tf.DType
    shape: list  # None for unknown dimensions

    @property
    def batched(self):
        return bool(self.shape) and self.shape[0] is None


class Batcher:
    """Groups concurrent calls of one signature into batches (TF Serving's batching).

    `submit(columns, rows)` queues `rows` rows of batched inputs and returns their outputs;
    a worker takes every request queued while the model was busy, up to `max_batch_size` rows
    (a larger request runs alone), waits at most `timeout_s` more for others (0: no wait, TF
    Serving's default), and runs the model in a thread.
    """

    def __init__(self, run_batch, max_batch_size, timeout_s, metrics):
        self.run_batch, self.max_batch_size, self.timeout_s = run_batch, max_batch_size, timeout_s
        self.metrics = metrics
        self.queue = asyncio.Queue()
        self.worker = None

    async def submit(self, columns, rows):
        if self.worker is None:
            self.worker = asyncio.get_running_loop().create_task(self._work())
        future = asyncio.get_running_loop().create_future()
        await self.queue.put((columns, rows, future))
        return await future

    async def _work(self):
        loop = asyncio.get_running_loop()
        pending = None  # a request that did not fit the last batch: it starts the next one
        while True:
            first = pending or await self.queue.get()
            pending = None
            batch, size = [first], first[1]
            deadline = loop.time() + self.timeout_s
            while size < self.max_batch_size:
                try:
                    item = self.queue.get_nowait()  # whatever arrived while the model ran
                except asyncio.QueueEmpty:
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        break
                    try:
                        item = await asyncio.wait_for(self.queue.get(), remaining)
                    except asyncio.TimeoutError:
                        break
                if size + item[1] > self.max_batch_size:
                    pending = item
                    break
                batch.append(item)
                size += item[1]
            await self._run(batch)

    async def _run(self, batch):
        names = list(batch[0][0])
        merged = {name: [v for columns, _, _ in batch for v in columns[name]] for name in names}
        self.metrics.observe_batch(sum(rows for _, rows, _ in batch))
        try:
            outputs = await asyncio.get_running_loop().run_in_executor(
                None, self.run_batch, merged)
        except Exception as exc:  # the model failed on this batch: every caller hears it
            for _, _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        start = 0
        for _, rows, future in batch:
            if not future.done():
                future.set_result({k: v[start:start + rows] for k, v in outputs.items()})
            start += rows


class ServedModel:
    """One model folder: its loaded version, signatures, input specs and batchers."""

    def __init__(self, name, folder, limits, metrics):
        from keras_nlp_app.export.saved_model import load_saved_model, resolve_model_dir, versions

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


# -- request parsing ---------------------------------------------------------------------------


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


# -- metrics -----------------------------------------------------------------------------------


class Metrics:
    """Prometheus metrics (prometheus_client): requests, latency, batch sizes."""

    def __init__(self):
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry = CollectorRegistry()
        self.requests = Counter("knlp_requests", "requests answered", ["model", "code"],
                                registry=self.registry)
        self.latency = Histogram("knlp_request_latency_seconds", "request latency", ["model"],
                                 registry=self.registry,
                                 buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10))
        self.batch_size = Histogram("knlp_batch_size", "rows per model call",
                                    registry=self.registry, buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256))

    def observe_batch(self, rows):
        self.batch_size.observe(rows)

    def render(self):
        from prometheus_client import generate_latest

        return generate_latest(self.registry)


# -- the application ---------------------------------------------------------------------------


def parse_model_arguments(arguments):
    """`[NAME=]MODEL_DIR` arguments → {name: folder}; a bare folder is named after itself."""
    models = {}
    for argument in arguments:
        name, sep, folder = argument.partition("=")
        if not sep:
            folder = argument
            name = os.path.basename(os.path.normpath(folder))
            if name.isdigit():  # a version folder: name the model after its parent
                name = os.path.basename(os.path.dirname(os.path.normpath(folder)))
        if not name or name in models:
            raise UserError(f"{argument}: model names must be unique and non-empty (use NAME=DIR)")
        if not os.path.isdir(folder):
            raise UserError(f"{folder}: no such model folder")
        models[name] = folder
    if not models:
        raise UserError("name at least one model folder to serve")
    return models


# the predict body, declared for the OpenAPI schema (the handler reads and checks it itself)
_PREDICT_OPENAPI = {"requestBody": {"required": True, "content": {"application/json": {"schema": {
    "type": "object",
    "properties": {"instances": {"type": "array", "items": {}},
                   "inputs": {},
                   "signature_name": {"type": "string"}}}}}},
    "responses": {"400": {"description": "a client mistake: {\"error\": \"...\"}"},
                  "404": {"description": "unknown model or version"}}}


def create_app(models, limits=None):
    """The ASGI application serving `models` ({name: folder}), loaded now: `PredictFirst`
    in front of the FastAPI app that answers status, metadata, health and metrics."""
    from fastapi import FastAPI
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, Response
    from starlette.exceptions import HTTPException

    limits = limits or Limits()
    metrics = Metrics()
    served = {name: ServedModel(name, folder, limits, metrics) for name, folder in models.items()}
    app = FastAPI(title="knlp serve", description="TensorFlow Serving REST API", version="1")
    app.state.served, app.state.metrics, app.state.limits = served, metrics, limits

    def error(message, status):
        return JSONResponse({"error": message}, status_code=status)

    @app.exception_handler(RequestError)
    async def request_error(request, exc):
        return error(str(exc), exc.status)

    @app.exception_handler(HTTPException)
    async def http_error(request, exc):
        return error(str(exc.detail), exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request, exc):
        return error("malformed request", 400)

    @app.exception_handler(Exception)
    async def internal_error(request, exc):  # a bug of ours: one line, no traceback
        return error(f"internal error: {type(exc).__name__}", 500)

    def model(name):
        if name not in served:
            raise RequestError(f"model {name!r} is not served (serving: "
                               f"{', '.join(sorted(served))})", status=404)
        return served[name]

    def version_number(text):
        if not (text.isascii() and text.isdigit()):
            raise RequestError(f"version {text!r} is not a number", status=404)
        return int(text)

    @app.get("/healthz")
    async def healthz():
        return {"status": "ok", "models": sorted(served)}

    @app.get("/metrics")
    async def prometheus():
        return Response(metrics.render(), media_type="text/plain; version=0.0.4")

    @app.get("/v1/models/{name}")
    async def status(name: str):
        return model(name).status()

    @app.get("/v1/models/{name}/versions/{version}")
    async def version_status(name: str, version: str):
        return model(name).status(version_number(version))

    @app.get("/v1/models/{name}/metadata")
    async def metadata(name: str):
        return model(name).metadata()

    @app.get("/v1/models/{name}/versions/{version}/metadata")
    async def version_metadata(name: str, version: str):
        return model(name).metadata(version_number(version))

    def openapi():
        """FastAPI's schema plus the two predict paths, which `PredictFirst` answers."""
        if app.openapi_schema is None:
            from fastapi.openapi.utils import get_openapi

            schema = get_openapi(title=app.title, version=app.version,
                                 description=app.description, routes=app.routes)
            for path, names in (("/v1/models/{name}:predict", ["name"]),
                                ("/v1/models/{name}/versions/{version}:predict",
                                 ["name", "version"])):
                schema["paths"][path] = {"post": {
                    "operationId": "predict_" + "_".join(names),
                    "parameters": [{"name": n, "in": "path", "required": True,
                                    "schema": {"type": "string"}} for n in names],
                    "requestBody": _PREDICT_OPENAPI["requestBody"],
                    "responses": {"200": {"description": "predictions or outputs"},
                                  **_PREDICT_OPENAPI["responses"]}}}
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi

    async def predict(name, version_text, content_length, receive):
        """(status, JSON-able payload) of one predict request, counted in the metrics."""
        started = time.perf_counter()
        code = 200
        try:
            target = model(name)
            target.check_version(None if version_text is None else version_number(version_text))
            return 200, await _predict(content_length, receive, target, limits)
        except RequestError as exc:
            code = exc.status
            return code, {"error": str(exc)}
        except Exception as exc:  # the model itself failed: say so without a traceback
            code = 500
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            return code, {"error": f"the model failed: {type(exc).__name__}: {first}"}
        finally:
            label = name if name in served else "(unknown)"
            metrics.requests.labels(label, str(code)).inc()
            metrics.latency.labels(label).observe(time.perf_counter() - started)

    return PredictFirst(app, predict)


_PREDICT_PATH = re.compile(r"/v1/models/([^/]+?)(?:/versions/([^/]+))?:predict")


class PredictFirst:
    """The server's ASGI application: predict requests go straight to `predict`, everything
    else to the FastAPI app.

    Predict is the hot path; answering it here skips FastAPI's routing, dependency solving and
    middleware, about a third of the server's time per request under load (measured with
    py-spy and scripts/bench_serve.py; docs/RESULTS.md).
    """

    def __init__(self, api, predict):
        self.api, self.predict = api, predict
        self.state = api.state

    async def __call__(self, scope, receive, send):
        match = _PREDICT_PATH.fullmatch(scope["path"]) if scope["type"] == "http" else None
        if match is None:
            await self.api(scope, receive, send)
            return
        if scope["method"] != "POST":
            status, payload = 405, {"error": f"{scope['method']} is not allowed; predict takes POST"}
        else:
            content_length = None
            for key, value in scope["headers"]:
                if key == b"content-length":
                    content_length = value.decode("latin-1")
            status, payload = await self.predict(match.group(1), match.group(2), content_length,
                                                 receive)
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


async def _read_body(content_length, receive, limits):
    if content_length and content_length.isdigit() and int(content_length) > limits.max_body_bytes:
        raise RequestError(f"the request body is {content_length} bytes; the limit is "
                           f"{limits.max_body_bytes}")
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise RequestError("the client went away before sending the whole body")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limits.max_body_bytes:
            raise RequestError(f"the request body is over the limit of {limits.max_body_bytes} "
                               "bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _predict(content_length, receive, target, limits):
    raw = await _read_body(content_length, receive, limits)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise RequestError("the request body is not valid UTF-8") from None
    try:
        body = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RequestError(f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    if not isinstance(body, dict):
        raise RequestError("the request body must be a JSON object")
    signature_name = body.get("signature_name") or "serving_default"
    if not isinstance(signature_name, str) or signature_name not in target.signatures:
        raise RequestError(f"no signature {signature_name!r}; the model has "
                           f"{', '.join(sorted(target.signatures))}")
    specs = target.inputs[signature_name]
    columns, rows, row_format = parse_predict(body, specs, limits)
    all_batched = all(spec.batched for spec in specs.values())
    if limits.batching and all_batched:
        outputs = await target.batcher(signature_name).submit(columns, rows)
    else:
        target.metrics.observe_batch(rows)
        outputs = await asyncio.get_running_loop().run_in_executor(
            None, target.call, signature_name, columns)
    return format_response(outputs, rows, row_format)


def serve(models, *, host="127.0.0.1", port=DEFAULT_PORT, limits=None, log_level="warning"):
    """Loads `models` ({name: folder}) and serves them until interrupted; on SIGINT/SIGTERM the
    server stops accepting connections and finishes the requests in flight."""
    import uvicorn

    app = create_app(models, limits)
    for name, target in app.state.served.items():
        print(f"serving {name} version {target.version} from {target.path} "
              f"(signatures: {', '.join(sorted(target.signatures))})", flush=True)
    print(f"listening on http://{host}:{port}/v1/models/NAME", flush=True)
    uvicorn.run(app, host=host, port=port, log_level=log_level, timeout_graceful_shutdown=30)
