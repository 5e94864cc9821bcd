"""Length buckets against padding to each batch's longest pair, on a seq2seq recipe; prints one
JSON object.

Two measurements from one run:
- padding overhead over one pass of the training batches (padded tokens / real tokens, source
  and target) for no buckets and for N buckets;
- training speed of the recipe for two epochs of `--steps` steps: padding to the longest without
  XLA (today's default) against N buckets with XLA (`train.length_buckets: N`, jit auto). The
  first epoch pays XLA's compiles (one per bucket pair met), the second runs compiled.

Usage:
    KNLP_DATA_DIR=../shared/data .venv/bin/python scripts/bench_bucketing.py \
        [--config configs/multi30k_en_de.yaml] [--buckets 8] [--steps 300]
"""

import argparse
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def padding_overhead(dataset):
    """(padded / real) tokens of the sources and targets over one pass."""
    import numpy as np

    totals = np.zeros((2, 2))
    for inputs, labels in dataset:
        for row, column in enumerate((inputs["source"], labels)):
            values = column.numpy()
            totals[row] += (values.size, np.count_nonzero(values))
    return {"source": round(totals[0, 0] / totals[0, 1], 3), "target": round(totals[1, 0] / totals[1, 1], 3)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/multi30k_en_de.yaml")
    parser.add_argument("--buckets", type=int, default=8)
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args()

    import keras

    from keras_nlp_app.config import load_config
    from keras_nlp_app.tasks import get_task
    from keras_nlp_app.training.train import train

    report = {"config": args.config, "buckets": args.buckets, "steps": args.steps}
    cfg = load_config([args.config])
    task = get_task(cfg.task)
    train_examples, _ = task.load_splits(cfg.data, cfg.train.seed)
    with tempfile.TemporaryDirectory() as folder:
        tokenizer, space = task.prepare_assets(cfg, train_examples, folder)
        preprocessor = task.build_preprocessor(cfg, tokenizer)
        overhead = {}
        for buckets in (0, args.buckets):
            cfg.train.length_buckets = buckets
            data, _, _ = task.datasets_for(cfg, preprocessor, space, train_examples, None,
                                           cfg.train.batch_size)
            overhead["longest" if buckets == 0 else f"{buckets}_buckets"] = padding_overhead(data)
        report["padding_overhead"] = overhead

        modes = {"longest_no_xla": ["train.length_buckets=0", "train.jit_compile=off"],
                 f"{args.buckets}_buckets_xla": [f"train.length_buckets={args.buckets}",
                                                 "train.jit_compile=auto"]}
        for mode, overrides in modes.items():
            keras.backend.clear_session()
            run_cfg = load_config([args.config], [
                *overrides, "train.epochs=2", f"train.steps_per_epoch={args.steps}",
                "train.eval_examples=50", "train.average_checkpoints=0", "train.verbose=0",
                "train.explain_samples=0", "train.projector_tokens=0"])
            started = time.perf_counter()
            run_dir = train(run_cfg, run_dir=os.path.join(folder, mode))
            wall = time.perf_counter() - started
            history = json.load(open(os.path.join(run_dir, "metrics.json")))["history"]
            report[mode] = {"epoch_train_seconds": [round(e["train_seconds"], 1) for e in history],
                            "steps_per_second": [round(args.steps / e["train_seconds"], 2)
                                                 for e in history],
                            "loss": [round(e["loss"], 4) for e in history],
                            "run_wall_seconds": round(wall, 1)}
    names = list(modes)
    report["speedup_by_epoch"] = [round(a / b, 2) for a, b in zip(
        report[names[0]]["epoch_train_seconds"], report[names[1]]["epoch_train_seconds"])]
    print(json.dumps(report))


if __name__ == "__main__":
    main()
