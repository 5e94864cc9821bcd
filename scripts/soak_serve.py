"""Soak test of `knlp serve` under version churn; prints one JSON object.

Exports a trained run as version 1 of a model folder, starts `knlp serve` on it (version
policy latest, polling every --poll-seconds), and sends --requests predict requests from
--clients threads on keep-alive connections while another thread adds a new version every
--swap-seconds (copied in under a hidden name, then renamed, as a deployment should) and
removes the oldest. Reports requests, failures (any answer but 200, or a dropped connection),
throughput, the versions added and removed, and the server's resident memory (RSS) over time.

Usage:
    .venv/bin/python scripts/soak_serve.py --run runs/imdb [--requests 100000 --clients 32]
"""

import argparse
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rss_mib(pid):
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    return None


def _wait_until_up(port, process, seconds=180):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"knlp serve exited with {process.returncode}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.5)
    raise SystemExit("knlp serve did not come up")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="a trained classifier run folder")
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--swap-seconds", type=float, default=5.0)
    parser.add_argument("--poll-seconds", type=float, default=0.5)
    args = parser.parse_args()

    from keras_nlp_app.export.saved_model import export_run

    work = tempfile.mkdtemp(prefix="knlp-soak-")
    folder = os.path.join(work, "model")
    source = export_run(args.run, os.path.join(work, "source"))
    shutil.copytree(source, os.path.join(folder, "1"))
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "keras_nlp_app", "serve", f"m={folder}", "--port", str(port),
         "--poll-seconds", str(args.poll_seconds)],
        stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "server.log"), "w"))
    try:
        _wait_until_up(port, server)
        report = _soak(args, port, server.pid, folder, source)
    finally:
        server.terminate()
        server.wait(timeout=60)
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(report))


def _soak(args, port, pid, folder, source):
    lock = threading.Lock()
    counts = {"sent": 0, "ok": 0, "failed": 0}
    failures = []
    done = threading.Event()
    body = json.dumps({"instances": ["a gripping , beautifully acted film"]})

    def client():
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while True:
            with lock:
                if counts["sent"] >= args.requests:
                    return
                counts["sent"] += 1
            try:
                connection.request("POST", "/v1/models/m:predict", body,
                                   {"Content-Type": "application/json"})
                response = connection.getresponse()
                payload = response.read()
                good = response.status == 200
            except (OSError, http.client.HTTPException) as exc:
                good, payload = False, repr(exc).encode()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            with lock:
                counts["ok" if good else "failed"] += 1
                if not good and len(failures) < 5:
                    failures.append(payload[:200].decode("utf-8", "replace"))

    added, removed = [], []

    def churn():
        version = 1
        while not done.wait(args.swap_seconds):
            version += 1
            staging = os.path.join(folder, f".staging-{version}")
            shutil.copytree(source, staging)
            os.rename(staging, os.path.join(folder, str(version)))
            added.append(version)
            present = sorted(int(v) for v in os.listdir(folder) if v.isdigit())
            if len(present) > 2:  # keep the two newest on disk
                shutil.rmtree(os.path.join(folder, str(present[0])))
                removed.append(present[0])

    rss = [(0.0, _rss_mib(pid))]
    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(args.clients)]
    churner = threading.Thread(target=churn)
    for thread in threads + [churner]:
        thread.start()
    while any(t.is_alive() for t in threads):
        time.sleep(2)
        rss.append((round(time.perf_counter() - started, 1), _rss_mib(pid)))
    elapsed = time.perf_counter() - started
    done.set()
    churner.join()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", "/v1/models/m")
    status = json.loads(connection.getresponse().read())
    third = len(rss) // 3
    return {"requests": counts["sent"], "ok": counts["ok"], "failed": counts["failed"],
            "failure_examples": failures, "clients": args.clients,
            "seconds": round(elapsed, 1), "requests_per_second": round(counts["sent"] / elapsed),
            "versions_added": len(added), "versions_removed": len(removed),
            "served_at_end": [s["version"] for s in status["model_version_status"]
                              if s["state"] == "AVAILABLE"],
            "rss_mib_start_middle_end": [rss[0][1], rss[len(rss) // 2][1], rss[-1][1]],
            "rss_mib_first_third_last_third_max": [max(r for _, r in rss[:max(third, 1)]),
                                                   max(r for _, r in rss[-max(third, 1):])],
            "rss_curve": rss[::max(len(rss) // 20, 1)]}


if __name__ == "__main__":
    main()
