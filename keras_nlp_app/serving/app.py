"""`knlp serve`: the TensorFlow Serving REST API over exported SavedModels (FastAPI + uvicorn).

A client written against this server moves to TF Serving unchanged, and the same model folder
works in both:

    GET  /v1/models/NAME[/versions/N]            status
    GET  /v1/models/NAME[/versions/N]/metadata   signatures: inputs and outputs
    POST /v1/models/NAME[/versions/N]:predict    {"instances": [...]} (row format) or
                                                 {"inputs": ...} (columnar), "signature_name"
    GET  /healthz, GET /metrics (Prometheus text format)

A model folder holds version folders (`MODEL_DIR/1/`, `MODEL_DIR/2/`); the version policy picks
which are served (default: the highest), as TF Serving does, and the folder is polled so a new
version is loaded, checked and served without a restart, and a removed one unloaded. Requests
to a signature whose inputs all have a batch dimension are grouped by a `Batcher` into one model call (at most `max_batch_size` rows, waiting at most
`batch_timeout_s` for more). Client mistakes are HTTP 400 with `{"error": "..."}` and unknown
models or versions 404; nothing a client sends produces a 500.
"""

import asyncio
import contextlib
import json
import logging
import os
import re
import threading
import time

from keras_nlp_app.errors import UserError
from keras_nlp_app.serving.metrics import Metrics
from keras_nlp_app.serving.models import ServedModel, ServedRules
from keras_nlp_app.serving.requests import Limits, RequestError, format_response, parse_predict

log = logging.getLogger("keras_nlp_app")
DEFAULT_PORT = 8501
RULES_SUFFIXES = (".yaml", ".yml")  # a rule-based bot's rules file, served beside SavedModels


def parse_model_arguments(arguments):
    """`[NAME=]MODEL_DIR` arguments → {name: folder}; a bare folder is named after itself."""
    models = {}
    for argument in arguments:
        name, sep, folder = argument.partition("=")
        if not sep:
            folder = argument
            name = os.path.basename(os.path.normpath(folder))
            if name.endswith(RULES_SUFFIXES):  # a rules file: named after its stem
                name = os.path.splitext(name)[0]
            if name.isdigit():  # a version folder: name the model after its parent
                name = os.path.basename(os.path.dirname(os.path.normpath(folder)))
        if not name or name in models:
            raise UserError(f"{argument}: model names must be unique and non-empty (use NAME=DIR)")
        if not os.path.isdir(folder) and not (folder.endswith(RULES_SUFFIXES) and os.path.isfile(folder)):
            raise UserError(f"{folder}: no such model folder (or rules YAML file)")
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


class Poller:
    """Re-reads every served folder every `seconds` in a thread of its own (TF Serving's
    file-system polling), so new versions are loaded and gone ones unloaded while serving."""

    def __init__(self, served, seconds):
        self.served, self.seconds = served, seconds
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name="knlp-version-poller", daemon=True)

    def _run(self):
        while not self.stopped.wait(self.seconds):
            for target in self.served.values():
                try:
                    target.refresh()
                except Exception as exc:  # a folder that vanished or cannot be listed
                    log.warning("model %s: cannot poll %s: %s", target.name, target.folder, exc)

    def start(self):
        if self.seconds > 0:
            self.thread.start()

    def stop(self):
        self.stopped.set()


def create_app(models, limits=None, *, version_policy="latest", poll_seconds=0.0):
    """The ASGI application serving `models` ({name: folder}), loaded now: `PredictFirst`
    in front of the FastAPI app that answers status, metadata, health and metrics. With
    `poll_seconds` > 0 each folder is re-read that often for new and removed versions."""
    from fastapi import FastAPI
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, Response
    from starlette.exceptions import HTTPException

    limits = limits or Limits()
    metrics = Metrics()
    served = {name: (ServedRules if folder.endswith(RULES_SUFFIXES) else ServedModel)(
        name, folder, limits, metrics, version_policy) for name, folder in models.items()}
    poller = Poller(served, poll_seconds)

    @contextlib.asynccontextmanager
    async def lifespan(_):
        poller.start()
        yield
        poller.stop()

    app = FastAPI(title="knlp serve", description="TensorFlow Serving REST API", version="1",
                  lifespan=lifespan)
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
            target = model(name).resolve(
                None if version_text is None else version_number(version_text))
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
    deadline = asyncio.get_running_loop().time() + limits.body_timeout_s
    while True:
        try:  # a stalled or trickling client is cut off; the others are never held up
            message = await asyncio.wait_for(
                receive(), max(deadline - asyncio.get_running_loop().time(), 0))
        except asyncio.TimeoutError:
            raise RequestError(f"the request body did not arrive within "
                               f"{limits.body_timeout_s:g} s", status=408) from None
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


def serve(models, *, host="127.0.0.1", port=DEFAULT_PORT, limits=None, log_level="warning",
          version_policy="latest", poll_seconds=2.0):
    """Loads `models` ({name: folder}) and serves them until interrupted; on SIGINT/SIGTERM the
    server stops accepting connections and finishes the requests in flight."""
    import uvicorn

    app = create_app(models, limits, version_policy=version_policy, poll_seconds=poll_seconds)
    for name, target in app.state.served.items():
        loaded = target.resolve()
        print(f"serving {name} version {loaded.version} from {loaded.path} "
              f"(signatures: {', '.join(sorted(loaded.signatures))})", flush=True)
    print(f"listening on http://{host}:{port}/v1/models/NAME", flush=True)
    uvicorn.run(app, host=host, port=port, log_level=log_level, timeout_graceful_shutdown=30)
