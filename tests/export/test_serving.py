"""knlp serve: every endpoint with good and bad requests, versions, batching seen in /metrics,
and answers equal to knlp predict."""

import concurrent.futures
import json
import re

import pytest


@pytest.fixture(scope="module")
def served(exported_versions):
    from fastapi.testclient import TestClient

    from keras_nlp_app.serving.app import create_app
    from keras_nlp_app.serving.requests import Limits

    folder = exported_versions[0]  # versions 1 and 2: 2 is the one served
    limits = Limits(max_body_bytes=2000, max_instances=8, max_string_chars=300,
                    max_batch_size=8, batch_timeout_s=0.05)
    with TestClient(create_app({"sentiment": folder}, limits)) as client:
        yield client, folder


def test_status_and_metadata_follow_tf_serving(served):
    client, _ = served
    status = client.get("/v1/models/sentiment").json()
    assert status["model_version_status"][0]["version"] == "2"  # the highest version
    assert status["model_version_status"][0]["state"] == "AVAILABLE"
    assert client.get("/v1/models/sentiment/versions/2").status_code == 200
    meta = client.get("/v1/models/sentiment/metadata").json()
    signature = meta["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert signature["inputs"]["text"]["dtype"] == "DT_STRING"
    assert {"label", "probabilities"} <= set(signature["outputs"])
    assert client.get("/healthz").json()["status"] == "ok"


def test_row_and_columnar_predictions_equal_knlp_predict(served, trained_run):
    from keras_nlp_app.inference import predict

    client, folder = served
    texts = ["a wonderful film", "the plot was awful"]
    expected = predict(folder, {"text": texts})
    rows = client.post("/v1/models/sentiment:predict", json={"instances": texts}).json()
    columns = client.post("/v1/models/sentiment/versions/2:predict",
                          json={"inputs": {"text": texts}}).json()["outputs"]
    objects = client.post("/v1/models/sentiment:predict",
                          json={"instances": [{"text": t} for t in texts]}).json()
    assert rows == objects
    for i, want in enumerate(expected):
        assert rows["predictions"][i]["label"] == columns["label"][i] == want["label"]
        assert rows["predictions"][i]["probabilities"] == pytest.approx(
            list(want["probabilities"].values()), abs=1e-5)


@pytest.mark.parametrize("body, status, message", [
    (b"{not json", 400, "malformed JSON"),
    (b'["a"]', 400, "must be a JSON object"),
    (b'{"instance": ["a"]}', 400, "unknown field 'instance'"),
    (b'{"instances": ["a"], "inputs": ["a"]}', 400, "exactly one of"),
    (b'{"instances": []}', 400, "'instances' is empty"),
    (b'{"instances": [3]}', 400, "takes strings, got int"),
    (b'{"instances": [{"txt": "a"}]}', 400, "missing input 'text'"),
    (b'{"inputs": {"text": []}}', 400, "is empty"),
    (b'{"instances": ["a"], "signature_name": "nope"}', 400, "no signature 'nope'"),
    (b'{"instances": ["\xff\xfe"]}', 400, "not valid UTF-8"),
    (json.dumps({"instances": ["a"] * 9}).encode(), 400, "the limit is 8"),
    (json.dumps({"instances": ["a" * 301]}).encode(), 400, "301 characters long"),
    (json.dumps({"instances": ["a" * 290] * 8}).encode(), 400, "the limit is 2000"),
])
def test_client_mistakes_are_400_with_a_json_error(served, body, status, message):
    client, _ = served
    response = client.post("/v1/models/sentiment:predict", content=body)
    assert response.status_code == status
    assert message in response.json()["error"]


def test_unknown_models_and_versions_are_404(served):
    client, _ = served
    for method, path in (("get", "/v1/models/nope"), ("get", "/v1/models/sentiment/versions/1"),
                         ("post", "/v1/models/nope:predict"),
                         ("post", "/v1/models/sentiment/versions/1:predict"),
                         ("get", "/v1/models/sentiment/versions/x/metadata"),
                         ("get", "/v1/models/sentiment/versions/%C2%B3"),
                         ("post", "/v1/models/sentiment/versions/%C2%B3:predict")):
        response = getattr(client, method)(path, **({"json": {"instances": ["a"]}}
                                                      if method == "post" else {}))
        assert response.status_code == 404, path
        assert "error" in response.json()


def test_predict_paths_take_post_only_and_stay_in_the_openapi_schema(served):
    client, _ = served
    response = client.get("/v1/models/sentiment:predict")
    assert response.status_code == 405 and "takes POST" in response.json()["error"]
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/v1/models/{name}:predict", "/v1/models/{name}/versions/{version}:predict"):
        assert "requestBody" in paths[path]["post"], path


def _histogram(metrics_text, name):
    count = float(re.search(rf"^{name}_count (\S+)$", metrics_text, re.M).group(1))
    total = float(re.search(rf"^{name}_sum (\S+)$", metrics_text, re.M).group(1))
    return count, total


def test_concurrent_requests_are_batched(served):
    client, _ = served
    before = _histogram(client.get("/metrics").text, "knlp_batch_size")
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(
            lambda i: client.post("/v1/models/sentiment:predict",
                                  json={"instances": [f"a good film {i}"]}), range(16)))
    assert all(a.status_code == 200 for a in answers)
    calls, rows = (after - earlier for after, earlier in
                   zip(_histogram(client.get("/metrics").text, "knlp_batch_size"), before))
    assert rows == 16 and calls < 16  # 16 requests shared fewer model calls
    assert 'knlp_requests_total{code="200",model="sentiment"}' in client.get("/metrics").text


def test_signatures_with_scalar_inputs_take_rows_or_columns():
    import tensorflow as tf

    from keras_nlp_app.serving.requests import InputSpec, Limits, RequestError, parse_predict

    specs = {"prompt": InputSpec("prompt", tf.string, [None]),
             "max_new_tokens": InputSpec("max_new_tokens", tf.int32, []),
             "temperature": InputSpec("temperature", tf.float32, [])}
    limits = Limits()
    columns, rows, row_format = parse_predict(
        {"instances": [{"prompt": "a", "max_new_tokens": 5, "temperature": 1},
                       {"prompt": "b", "max_new_tokens": 5, "temperature": 1}]}, specs, limits)
    assert columns == {"prompt": ["a", "b"], "max_new_tokens": 5, "temperature": 1.0}
    assert (rows, row_format) == (2, True)
    columns, rows, row_format = parse_predict(
        {"inputs": {"prompt": ["a"], "max_new_tokens": 3, "temperature": 0.5},
         "signature_name": "generate"}, specs, limits)
    assert columns["max_new_tokens"] == 3 and (rows, row_format) == (1, False)
    for body, message in (
            ({"instances": [{"prompt": "a", "max_new_tokens": 5, "temperature": 1},
                            {"prompt": "b", "max_new_tokens": 6, "temperature": 1}]},
             "same value"),
            ({"inputs": {"prompt": ["a"], "max_new_tokens": "5", "temperature": 1}},
             "takes an integer"),
            ({"inputs": {"prompt": ["a"], "max_new_tokens": True, "temperature": 1}},
             "takes an integer"),
            ({"inputs": {"prompt": "a", "max_new_tokens": 5, "temperature": 1}},
             "needs a list")):
        with pytest.raises(RequestError, match=message):
            parse_predict(body, specs, limits)


@pytest.mark.slow
def test_sigterm_finishes_the_requests_in_flight(served):
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    _, folder = served
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "keras_nlp_app", "serve", folder, "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.2)

        def ask(_):
            body = json.dumps({"instances": ["a fine film"] * 200}).encode()
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/v1/models/sentiment:predict", data=body,
                headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=60) as answer:
                return answer.status

        with concurrent.futures.ThreadPoolExecutor(20) as pool:
            pending = [pool.submit(ask, i) for i in range(20)]
            time.sleep(0.3)
            server.send_signal(signal.SIGTERM)
            assert [p.result() for p in pending] == [200] * 20
        server.wait(60)
    finally:
        server.kill()
