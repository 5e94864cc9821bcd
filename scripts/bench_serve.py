"""knlp serve load test; prints one JSON object.

Starts `knlp serve` on the quickstart sentiment model (saved_models/sentiment; run
./scripts/quickstart.sh first) with server-side batching on and then off, and sends `--requests`
single-sentence predict requests from 1, 8 and 32 concurrent clients (HTTP/1.1 keep-alive
connections written with asyncio streams in one process, so the client costs the shared cores
as little as it can).
Each setting runs `--rounds` rounds (default 3) and reports the median round's p50/p99 latency
and requests/s (every round's requests/s beside it), the errors of all rounds, and the
throughput ratio of batching on/off at 32 clients. Client and server share this machine's cores.

Usage:
    .venv/bin/python scripts/bench_serve.py [--model saved_models/sentiment] [--requests 5000]
"""

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model, port, batching):
    command = [sys.executable, "-m", "keras_nlp_app", "serve", model, "--port", str(port)]
    if not batching:
        command.append("--no-batching")
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    import urllib.error
    import urllib.request

    for _ in range(600):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as answer:
                if answer.status == 200:
                    return server
        except (urllib.error.URLError, ConnectionError):
            pass
        if server.poll() is not None:
            raise RuntimeError("knlp serve exited before answering")
        time.sleep(0.2)
    server.kill()
    raise RuntimeError("knlp serve did not start")


async def load(url, sentences, total, clients):
    """`total` requests over `clients` keep-alive connections; each client sends its next
    request when the last answer is in (a closed loop, as wrk does)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    bodies = [json.dumps({"instances": [s]}).encode() for s in sentences]
    requests = [(f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
                 f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
                 ).encode() + body for body in bodies]
    latencies, errors = [], 0
    counter = iter(range(total))

    async def exchange(reader, writer, request):
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        await reader.readexactly(length)
        return status

    async def client():
        nonlocal errors
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        await exchange(reader, writer, requests[0])  # warm-up, not counted
        await ready.wait()
        for i in counter:
            started = time.perf_counter()
            if await exchange(reader, writer, requests[i % len(requests)]) != 200:
                errors += 1
            latencies.append(time.perf_counter() - started)
        writer.close()

    ready = asyncio.Event()
    tasks = [asyncio.create_task(client()) for _ in range(clients)]
    await asyncio.sleep(0.5)  # every connection open and warmed up
    started = time.perf_counter()
    ready.set()
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {"requests": total, "errors": errors, "requests_per_s": round(total / elapsed, 1),
            "p50_ms": round(1000 * statistics.median(latencies), 2),
            "p99_ms": round(1000 * latencies[int(0.99 * (len(latencies) - 1))], 2)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="saved_models/sentiment")
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--clients", default="1,8,32")
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds of --requests per setting; the median round is reported")
    args = parser.parse_args()
    if not os.path.isdir(args.model):
        sys.exit(f"{args.model}: no such model folder; run ./scripts/quickstart.sh first")
    sentences = [f"the film was {w} and the plot {v}" for w in ("great", "dull", "fine", "awful")
                 for v in ("moved", "dragged", "worked", "failed")]
    result = {"model": args.model, "requests_per_setting": args.requests, "settings": {}}
    for batching in (True, False):
        port = free_port()
        server = start_server(args.model, port, batching)
        try:
            url = f"http://127.0.0.1:{port}/v1/models/{os.path.basename(os.path.normpath(args.model))}:predict"
            for clients in map(int, args.clients.split(",")):
                key = f"batching_{'on' if batching else 'off'}_clients_{clients}"
                rounds = [asyncio.run(load(url, sentences, args.requests, clients))
                          for _ in range(args.rounds)]
                median = sorted(rounds, key=lambda r: r["requests_per_s"])[len(rounds) // 2]
                result["settings"][key] = dict(
                    median, rounds_requests_per_s=[r["requests_per_s"] for r in rounds],
                    errors=sum(r["errors"] for r in rounds))
        finally:
            server.terminate()
            server.wait(60)
    top = max(map(int, args.clients.split(",")))
    on = result["settings"][f"batching_on_clients_{top}"]["requests_per_s"]
    off = result["settings"][f"batching_off_clients_{top}"]["requests_per_s"]
    result[f"batching_speedup_at_{top}_clients"] = round(on / off, 2)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
