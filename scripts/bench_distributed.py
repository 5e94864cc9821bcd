"""Multi-worker training measured: one worker against two local workers, and a run whose
workers are SIGKILLed and resumed. Prints one JSON object.

    python scripts/bench_distributed.py compare configs/sst2_lstm.yaml
    python scripts/bench_distributed.py kill configs/sst2_lstm.yaml --kills 3

compare: the recipe as one process, then as `knlp train --workers 2` with the per-replica batch
halved, so both runs take the same global batch, steps and learning rate.
kill: `knlp train --workers 2 --max-restarts K`; at K random moments a random worker gets
SIGKILL, the launcher restarts both and training resumes from the last backup. The step each
kill hit is read from the chief's progress bar (it refreshes every 0.05 s, so ±1-2 steps);
repeated steps = step at the kill − step resumed from.
"""

import argparse
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def knlp_train(config, run_dir, overrides, workers=1, extra=(), **popen):
    command = [sys.executable, "-m", "keras_nlp_app", "train", config, "--run-dir", run_dir]
    if workers > 1:
        command += ["--workers", str(workers)]
    for override in overrides:
        command += ["--set", override]
    return subprocess.Popen(command + list(extra), cwd=ROOT, **popen)


def read_metrics(run_dir):
    with open(os.path.join(run_dir, "metrics.json")) as f:
        metrics = json.load(f)
    metrics.pop("history", None)
    return metrics


def per_replica_batch(config, overrides, workers):
    from keras_nlp_app.config import load_config

    batch = load_config([config], overrides).train.batch_size
    if batch % workers:
        raise SystemExit(f"batch_size {batch} does not split over {workers} workers")
    return batch // workers


def compare(args):
    results = {}
    for workers in (1, args.workers):
        run_dir = os.path.join(args.root, f"{workers}_worker")
        shutil.rmtree(run_dir, ignore_errors=True)
        overrides = list(args.set) + ["train.verbose=0",
                                      f"train.batch_size={per_replica_batch(args.config, args.set, workers)}"]
        started = time.time()
        code = knlp_train(args.config, run_dir, overrides, workers,
                          stdout=subprocess.DEVNULL).wait()
        if code:
            raise SystemExit(f"{workers} worker run failed with {code}")
        results[f"workers_{workers}"] = dict(read_metrics(run_dir),
                                             wall_seconds=round(time.time() - started, 1))
    return results


PROGRESS = re.compile(r"^\s*(\d+)/(\d+)\b")
EPOCH = re.compile(r"^Epoch (\d+)/(\d+)")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def kill(args):
    run_dir = os.path.join(args.root, "killed")
    shutil.rmtree(run_dir, ignore_errors=True)
    overrides = list(args.set) + [
        "train.verbose=1", f"train.backup_every_steps={args.backup_every}",
        f"train.batch_size={per_replica_batch(args.config, args.set, args.workers)}"]
    launcher = knlp_train(args.config, run_dir, overrides, args.workers,
                          extra=["--max-restarts", str(args.kills)], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT)
    progress = {"epoch": 0, "step": 0, "steps_per_epoch": 0}

    def follow():
        """Reads the chief's progress bar: `\\r`-separated `step/steps` updates, ANSI-coloured."""
        pending = ""
        while True:
            chunk = os.read(launcher.stdout.fileno(), 65536)
            if not chunk:
                return
            pieces = re.split(r"[\r\n]", pending + ANSI.sub("", chunk.decode(errors="replace")))
            pending = pieces.pop()
            for piece in pieces:
                epoch, step = EPOCH.match(piece), PROGRESS.match(piece)
                if epoch:
                    progress.update(epoch=int(epoch.group(1)) - 1, step=0)
                elif step:
                    progress.update(step=int(step.group(1)), steps_per_epoch=int(step.group(2)))

    threading.Thread(target=follow, daemon=True).start()
    rng = random.Random(args.seed)
    kills, started = [], time.time()
    for _ in range(args.kills):
        time.sleep(rng.uniform(args.min_wait, args.max_wait))
        children = subprocess.run(["pgrep", "-P", str(launcher.pid)], capture_output=True,
                                  text=True).stdout.split()
        if launcher.poll() is not None or not children:
            break
        victim = rng.randrange(len(children))
        batch = progress["epoch"] * progress["steps_per_epoch"] + progress["step"]
        os.kill(int(children[victim]), signal.SIGKILL)
        kills.append({"worker": victim, "epoch": progress["epoch"] + 1,
                      "batch_at_kill": batch, "seconds": round(time.time() - started, 1)})
        # wait for the restart to come up before choosing the next moment
        while launcher.poll() is None and len(subprocess.run(
                ["pgrep", "-P", str(launcher.pid)], capture_output=True, text=True).stdout.split()) < args.workers:
            time.sleep(0.5)
        time.sleep(5)
    code = launcher.wait()
    if code:
        raise SystemExit(f"killed run ended with {code}")
    metrics = read_metrics(run_dir)
    resumed = metrics.get("resumed_at_batches", [])
    for entry, resumed_at in zip(kills, resumed):
        entry["resumed_at_batch"] = resumed_at
        # the bar can lag the backup by a step or two: a kill right after a backup repeats none
        entry["repeated_batches"] = max(entry["batch_at_kill"] - resumed_at, 0)
    return {"kills": kills, "repeated_batches": sum(k.get("repeated_batches", 0) for k in kills),
            "wall_seconds": round(time.time() - started, 1), "metrics": metrics}


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["compare", "kill"])
    parser.add_argument("config")
    parser.add_argument("--set", action="append", default=[], help="config override")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--root", default="/tmp/knlp_bench_distributed")
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--backup-every", type=int, default=100, help="backup every N batches")
    parser.add_argument("--min-wait", type=float, default=20.0, help="seconds before a kill, at least")
    parser.add_argument("--max-wait", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    os.makedirs(args.root, exist_ok=True)
    result = compare(args) if args.mode == "compare" else kill(args)
    print(json.dumps({"mode": args.mode, "config": args.config, "workers": args.workers,
                      "overrides": args.set, **result}, indent=2))


if __name__ == "__main__":
    main()
