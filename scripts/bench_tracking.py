"""What experiment tracking costs: the quickstart recipe trained without tracking and with
`train.tracking: [wandb, mlflow]` (W&B offline, MLflow's local SQLite store), alternating, in one
process; prints one JSON object.

Reported per mode: the epochs' training seconds (metrics.json history) and the whole run's wall
time; for the tracked runs also the seconds spent inside the trackers, split into start (creating
the tracked runs, parameters), per epoch (logging an epoch) and finish (final metrics and the run
folder as artifacts). The issue's figure is the per-epoch share: tracker seconds per epoch over
the untracked epoch time.

Usage:
    KNLP_DATA_DIR=../shared/data .venv/bin/python scripts/bench_tracking.py [--repeats 2]
"""

import argparse
import collections
import json
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def timed(spent, key, function):
    def wrapper(*args, **kwargs):
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            spent[key] += time.perf_counter() - started
    return wrapper


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/sst2_lstm.yaml")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--set", action="append", default=[])
    args = parser.parse_args()
    os.environ.setdefault("WANDB_MODE", "offline")

    import keras

    from keras_nlp_app.config import load_config
    from keras_nlp_app.training import tracking
    from keras_nlp_app.training.train import train

    spent = collections.Counter()
    tracking.start_trackers = timed(spent, "start", tracking.start_trackers)
    tracking.finish_trackers = timed(spent, "finish", tracking.finish_trackers)
    for tracker in tracking.CLASSES.values():
        tracker.log_epoch = timed(spent, "epochs", tracker.log_epoch)

    modes = {"none": "none", "wandb+mlflow": "[wandb, mlflow]"}
    results = {mode: {"epoch_seconds": [], "run_seconds": []} for mode in modes}
    epochs_tracked = 0
    with tempfile.TemporaryDirectory() as root:
        for repeat in range(args.repeats):
            for mode, setting in modes.items():
                keras.backend.clear_session()
                cfg = load_config([args.config], [*args.set, f"train.tracking={setting}",
                                                  "train.verbose=0"])
                started = time.perf_counter()
                run_dir = train(cfg, run_dir=os.path.join(root, f"{mode}-{repeat}"))
                results[mode]["run_seconds"].append(time.perf_counter() - started)
                history = json.load(open(os.path.join(run_dir, "metrics.json")))["history"]
                results[mode]["epoch_seconds"] += [e["train_seconds"] for e in history]
                if mode != "none":
                    epochs_tracked += len(history)
    tracked_runs = args.repeats
    epoch_none = statistics.median(results["none"]["epoch_seconds"])
    per_epoch = spent["epochs"] / max(epochs_tracked, 1)
    report = {
        "config": args.config, "repeats": args.repeats,
        "epoch_seconds": {m: round(statistics.median(r["epoch_seconds"]), 2) for m, r in results.items()},
        "run_seconds": {m: [round(s, 1) for s in r["run_seconds"]] for m, r in results.items()},
        "tracker_seconds_per_epoch": round(per_epoch, 4),
        "tracker_share_of_epoch": round(per_epoch / epoch_none, 5),
        "tracker_start_seconds_per_run": round(spent["start"] / tracked_runs, 2),
        "tracker_finish_seconds_per_run": round(spent["finish"] / tracked_runs, 2),
        "run_overhead_share": round((spent["start"] + spent["finish"] + spent["epochs"])
                                    / tracked_runs / statistics.median(results["none"]["run_seconds"]), 4),
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
