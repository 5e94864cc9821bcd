"""knlp serve under churn: versions added, broken, mended and removed while requests flow, as
with TF Serving's file-system source."""

import concurrent.futures
import os
import shutil
import threading
import time

import pytest


@pytest.fixture(scope="module")
def exported_version(exported_versions):
    return exported_versions[1]


def _add_version(folder, source, version, break_it=False):
    """Copies `source` in as version `version` the way a deployment should: into a hidden
    folder, then one rename."""
    staging = os.path.join(folder, f".staging-{version}")
    shutil.copytree(source, staging)
    if break_it:
        variables = os.path.join(staging, "variables")
        data = [f for f in os.listdir(variables) if ".data" in f][0]
        with open(os.path.join(variables, data), "r+b") as f:
            f.truncate(10)
    os.rename(staging, os.path.join(folder, str(version)))


def _states(client):
    return {s["version"]: (s["state"], s["status"]["error_message"])
            for s in client.get("/v1/models/m").json()["model_version_status"]}


def test_versions_come_and_go_without_a_failed_request(exported_version, tmp_path):
    from fastapi.testclient import TestClient

    from keras_nlp_app.serving.app import create_app

    folder = str(tmp_path / "m")
    os.makedirs(folder)
    _add_version(folder, exported_version, 1)
    app = create_app({"m": folder})
    served = app.state.served["m"]
    failures, answered, stop = [], [], threading.Event()

    with TestClient(app) as client:
        def hammer():
            while not stop.is_set():
                response = client.post("/v1/models/m:predict", json={"instances": ["a good film"]})
                (answered if response.status_code == 200 else failures).append(response.text)

        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            for _ in range(4):
                pool.submit(hammer)
            _add_version(folder, exported_version, 2)
            served.refresh()
            assert _states(client)["2"] == ("AVAILABLE", "")
            assert _states(client)["1"][0] == "END"  # latest: the old version was unloaded
            assert client.get("/v1/models/m/metadata").json()["model_spec"]["version"] == "2"

            _add_version(folder, exported_version, 3, break_it=True)
            served.refresh()
            state, message = _states(client)["3"]
            assert state == "END" and message  # refused, with the reason
            assert served.version == 2  # the last good version keeps serving

            shutil.rmtree(os.path.join(folder, "3"))
            _add_version(folder, exported_version, 3)  # mended: its files changed, so retried
            served.refresh()
            assert _states(client)["3"] == ("AVAILABLE", "") and served.version == 3

            shutil.rmtree(os.path.join(folder, "3"))  # removed: the newest left is served again
            served.refresh()
            assert served.version == 2
            time.sleep(0.3)
            stop.set()
    assert not failures, failures[:3]
    assert len(answered) > 20


def test_policy_all_serves_every_version_and_the_poller_finds_new_ones(exported_version, tmp_path):
    from fastapi.testclient import TestClient

    from keras_nlp_app.serving.app import create_app

    folder = str(tmp_path / "m")
    os.makedirs(folder)
    _add_version(folder, exported_version, 1)
    with TestClient(create_app({"m": folder}, version_policy="all", poll_seconds=0.1)) as client:
        _add_version(folder, exported_version, 2)
        deadline = time.time() + 30
        while _states(client).get("2", ("",))[0] != "AVAILABLE" and time.time() < deadline:
            time.sleep(0.1)
        assert _states(client) == {"1": ("AVAILABLE", ""), "2": ("AVAILABLE", "")}
        for version in (1, 2):
            response = client.post(f"/v1/models/m/versions/{version}:predict",
                                   json={"instances": ["a fine film"]})
            assert response.status_code == 200


def test_a_folder_with_no_loadable_version_is_refused_at_start(exported_version, tmp_path):
    from keras_nlp_app.errors import UserError
    from keras_nlp_app.serving.app import create_app
    from keras_nlp_app.serving.models import parse_version_policy

    folder = str(tmp_path / "m")
    os.makedirs(folder)
    _add_version(folder, exported_version, 1, break_it=True)
    with pytest.raises(UserError, match="no version could be loaded"):
        create_app({"m": folder})
    assert parse_version_policy("1,3") == frozenset({1, 3})
    with pytest.raises(UserError, match="version-policy"):
        parse_version_policy("newest")


def test_a_stalled_or_trickling_body_is_cut_off_without_holding_up_others(exported_version):
    import asyncio
    import json

    from keras_nlp_app.serving.app import create_app
    from keras_nlp_app.serving.requests import Limits

    app = create_app({"m": os.path.dirname(exported_version)}, Limits(body_timeout_s=0.5))
    body = json.dumps({"instances": ["a good film"]}).encode()

    async def request(receive):
        sent = []

        async def send(message):
            sent.append(message)

        scope = {"type": "http", "method": "POST", "path": "/v1/models/m:predict",
                 "headers": [(b"content-length", str(len(body)).encode())]}
        started = time.perf_counter()
        await app(scope, receive, send)
        return sent[0]["status"], time.perf_counter() - started

    async def stalled():
        await asyncio.sleep(3600)

    trickled = iter(body)

    async def trickle():
        await asyncio.sleep(0.2)
        return {"type": "http.request", "body": bytes([next(trickled)]), "more_body": True}

    async def whole():
        return {"type": "http.request", "body": body, "more_body": False}

    async def main():
        return await asyncio.gather(request(stalled), request(trickle), request(whole))

    (stall_code, stall_s), (trickle_code, trickle_s), (ok_code, ok_s) = asyncio.run(main())
    assert stall_code == 408 and trickle_code == 408 and stall_s < 2 and trickle_s < 2
    assert ok_code == 200 and ok_s < 1.5  # answered while the other two were still waiting


def test_an_unloaded_version_leaves_nothing_behind(exported_version):
    """A version runs in a graph and session of its own (tf.saved_model.load kept ~0.8 MiB per
    load for good): once the version is dropped, its graph is freed with it."""
    import gc
    import weakref

    from keras_nlp_app.serving.models import LoadedVersion
    from keras_nlp_app.serving.requests import Limits

    version = LoadedVersion("m", 1, exported_version, Limits(), metrics=None)
    assert version.call("serving_default", {"text": ["a good film"]})
    graph, session = weakref.ref(version.loaded.graph), weakref.ref(version.loaded.session)
    del version
    gc.collect()
    assert graph() is None and session() is None


@pytest.mark.slow
def test_slow_clients_over_real_sockets_are_cut_off_without_holding_up_others(exported_version):
    """`knlp serve` as a process, over TCP: a client that sends headers and then stalls, and one
    that trickles its body a byte at a time, get 408 after --body-timeout-s, while a third
    client's request is answered at once."""
    import json
    import socket
    import subprocess
    import sys

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "keras_nlp_app", "serve", f"m={os.path.dirname(exported_version)}",
         "--port", str(port), "--body-timeout-s", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    body = json.dumps({"instances": ["a good film"]}).encode()
    head = (f"POST /v1/models/m:predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()

    def status_of(connection):
        return int(connection.recv(4096).split(b" ", 2)[1])

    try:
        for _ in range(600):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert server.poll() is None, "knlp serve exited"
                time.sleep(0.1)
        stalled = socket.create_connection(("127.0.0.1", port), timeout=10)
        stalled.sendall(head + body[:5])
        trickling = socket.create_connection(("127.0.0.1", port), timeout=10)
        trickling.sendall(head)
        started = time.monotonic()
        with socket.create_connection(("127.0.0.1", port), timeout=10) as prompt:
            prompt.sendall(head + body)
            assert status_of(prompt) == 200
        prompt_s = time.monotonic() - started
        for byte in body[:8]:  # one byte every 0.3 s: slower than the body must arrive
            try:
                trickling.sendall(bytes([byte]))
            except OSError:
                break
            time.sleep(0.3)
        assert status_of(stalled) == 408 and status_of(trickling) == 408
        assert prompt_s < 1.0 and time.monotonic() - started < 5.0
        stalled.close()
        trickling.close()
    finally:
        server.terminate()
        server.wait(timeout=60)
