"""Short accelerator check: the quickstart recipe for a few hundred steps, examples/s as JSON.

Uses mixed_float16 when a GPU is present and float32 on CPU, so the same script runs anywhere.
Run through scripts/gpu_check.sh.
"""

import argparse
import json
import os
import tempfile
import time


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=256)
    args = parser.parse_args()

    import tensorflow as tf

    from keras_nlp_app.config import load_config
    from keras_nlp_app.training.train import train

    gpus = tf.config.list_physical_devices("GPU")
    policy = "mixed_float16" if gpus else "none"
    cfg = load_config(["configs/sst2_lstm.yaml"], [
        f"train.mixed_precision={policy}", f"train.batch_size={args.batch_size}",
        f"train.steps_per_epoch={args.steps}", "train.epochs=2", "train.verbose=0",
        "name=gpu_check"])
    with tempfile.TemporaryDirectory() as run_dir:
        started = time.time()
        train(cfg, run_dir=os.path.join(run_dir, "run"))
        with open(os.path.join(run_dir, "run", "metrics.json")) as f:
            metrics = json.load(f)
        wall = time.time() - started
    replicas = metrics["replicas"]
    examples = args.steps * 2 * args.batch_size * replicas
    print(json.dumps({
        "device": gpus[0].name if gpus else "cpu", "gpus": len(gpus), "mixed_precision": policy,
        "steps": args.steps * 2, "global_batch_size": metrics["global_batch_size"],
        "train_seconds": metrics["train_seconds"], "wall_seconds": round(wall, 1),
        "examples_per_second": round(examples / metrics["train_seconds"], 1),
        "dev_accuracy": round(metrics["accuracy"], 4)}))


if __name__ == "__main__":
    main()
