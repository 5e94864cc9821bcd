"""`knlp train --workers N`: N training processes on this machine, joined by TF_CONFIG.

Each process runs the same `knlp train` command with its own `TF_CONFIG` (cluster of N workers
on 127.0.0.1, worker 0 the chief), so `MultiWorkerMirroredStrategy` trains them as one job,
exactly as it would across machines. When one worker dies, the others cannot go on (every step
all-reduces), so the launcher stops them all; the same command then resumes from the chief's
last backup, and `--max-restarts` does that by itself.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time

from keras_nlp_app.errors import UserError


def free_ports(count):
    """`count` distinct TCP ports that are free on 127.0.0.1 now."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def worker_environments(workers, base_env=None):
    """One environment per worker: TF_CONFIG naming the local cluster and this worker, and
    TensorFlow's thread pools sized to share the machine's cores."""
    base_env = dict(os.environ if base_env is None else base_env)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(workers)]}
    threads = str(max(1, (os.cpu_count() or 1) // workers))
    envs = []
    for index in range(workers):
        env = dict(base_env, TF_CONFIG=json.dumps(
            {"cluster": cluster, "task": {"type": "worker", "index": index}}))
        env.setdefault("TF_NUM_INTRAOP_THREADS", threads)
        env.setdefault("TF_NUM_INTEROP_THREADS", "2")
        envs.append(env)
    return envs


def _describe(code):
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def _stop(processes, grace_seconds=10.0):
    for process in processes:
        if process.poll() is None:
            process.terminate()
    deadline = time.time() + grace_seconds
    for process in processes:
        try:
            process.wait(timeout=max(deadline - time.time(), 0.1))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run_workers(command, workers, run_dir, *, poll_seconds=0.2):
    """Runs `command` (a `knlp train ...` argv) as `workers` processes; returns 0 when all
    finish, otherwise the first failure's code after stopping the others.

    Worker 0 (the chief) prints to this terminal; worker i logs to `run_dir/workers/i.log`.
    """
    log_dir = os.path.join(run_dir, "workers")
    os.makedirs(log_dir, exist_ok=True)
    processes, logs = [], []
    for index, env in enumerate(worker_environments(workers)):
        if index == 0:
            out = None
        else:
            out = open(os.path.join(log_dir, f"{index}.log"), "a", encoding="utf-8")
            logs.append(out)
        processes.append(subprocess.Popen(command, env=env, stdout=out, stderr=out))

    def forward(signum, _frame):
        _stop(processes)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, forward)
    try:
        while True:
            codes = [p.poll() for p in processes]
            failed = [(i, c) for i, c in enumerate(codes) if c not in (None, 0)]
            if failed:
                index, code = failed[0]
                _stop(processes)
                where = "" if index == 0 else f" (its log: {os.path.join(log_dir, f'{index}.log')})"
                print(f"knlp: worker {index} stopped: {_describe(code)}{where}; stopped the other "
                      f"workers", file=sys.stderr)
                return code if code > 0 else 1
            if all(c == 0 for c in codes):
                return 0
            time.sleep(poll_seconds)
    except KeyboardInterrupt:
        _stop(processes)
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)
        for out in logs:
            out.close()


def train_with_workers(config_path, overrides, run_dir, workers, max_restarts=0):
    """`knlp train` as `workers` local processes, relaunched up to `max_restarts` times after a
    worker dies (each relaunch resumes from the last backup). Returns the exit code."""
    if workers < 2:
        raise UserError("--workers needs at least 2 (one process trains without it)")
    if max_restarts < 0:
        raise UserError("--max-restarts must be 0 or more")
    command = [sys.executable, "-m", "keras_nlp_app", "train", config_path, "--run-dir", run_dir]
    for override in overrides:
        command += ["--set", override]
    attempt = 0
    while True:
        code = run_workers(command, workers, run_dir)
        if code in (0, 2) or attempt >= max_restarts:
            if code not in (0, 2):
                print(f"knlp: run the same command to resume from {os.path.join(run_dir, 'backup')}",
                      file=sys.stderr)
            return code
        attempt += 1
        print(f"knlp: restarting the {workers} workers ({attempt} of {max_restarts}); training "
              f"resumes from the last backup", file=sys.stderr)
