"""Short accelerator check: each task's recipe for a few hundred steps, in float32 without XLA
and then with mixed precision and XLA. Prints one JSON line per run and a summary line.

Speed is the second epoch's training time (the first one compiles), so reading data, learning
the vocabulary and validation are not counted. Batches padded to their own length give XLA a
new shape, and a new compilation, for every length it has not seen; `--xla auto` keeps XLA to
the tasks whose batches have one shape. Tokens/s counts the positions a step predicts
for language models (every window position) and whitespace words of the inputs (and targets,
for seq2seq) otherwise. On a machine without a GPU the fast mode uses bfloat16 (no loss
scaling needed), so the same script runs anywhere. Run through scripts/gpu_check.sh.
"""

import argparse
import json
import os
import tempfile

RECIPES = {
    "classification": ("configs/sst2_lstm.yaml", []),
    "tagging": ("configs/conll2003.yaml", []),
    "lm": ("configs/shakespeare_char.yaml", []),
    "seq2seq": ("configs/multi30k_en_de.yaml", ["train.eval_examples=50", "model.beam_size=1"]),
}


def words_per_example(cfg):
    """Mean whitespace words per training example (sources + targets for seq2seq)."""
    from keras_nlp_app.tasks import TASKS

    examples, _ = TASKS[cfg.task].load_splits(cfg.data, cfg.train.seed)
    texts = list(examples.texts)[:5000]

    def words(value):
        return len(value.split()) if isinstance(value, str) else len(value)

    total = sum(words(t) for t in texts)
    if cfg.task == "seq2seq":
        total += sum(words(t) for t in list(examples.labels)[:5000])
    return total / max(len(texts), 1)


def run(task, mode, steps, gpus, xla):
    from keras_nlp_app.config import load_config
    from keras_nlp_app.training.train import train

    config, extra = RECIPES[task]
    fast = mode == "mixed+xla"
    policy = ("mixed_float16" if gpus else "bfloat16") if fast else "none"
    overrides = extra + [f"train.mixed_precision={policy}",
                         f"train.jit_compile={xla if fast else 'off'}",
                         f"train.steps_per_epoch={steps}", "train.epochs=2",
                         "train.steps_per_execution=1", "train.early_stopping_patience=0",
                         "train.verbose=0", f"name=gpu_check_{task}"]
    cfg = load_config([config], overrides)
    with tempfile.TemporaryDirectory() as folder:
        run_dir = train(cfg, run_dir=os.path.join(folder, "run"))
        with open(os.path.join(run_dir, "metrics.json")) as f:
            metrics = json.load(f)
    seconds = metrics["history"][-1]["train_seconds"]
    examples_per_second = steps * metrics["global_batch_size"] / seconds
    if task == "lm":
        tokens, unit = cfg.tokenizer.sequence_length, "predicted tokens"
    else:
        tokens, unit = words_per_example(cfg), "words"
    return {"task": task, "config": config, "mode": mode, "mixed_precision": policy,
            "jit_compile": xla if fast else "off", "steps": steps, "global_batch_size": metrics["global_batch_size"],
            "epoch_seconds": seconds, "examples_per_second": round(examples_per_second, 1),
            "tokens_per_second": round(examples_per_second * tokens, 1), "token_unit": unit}


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=200, help="training steps per epoch (2 epochs)")
    parser.add_argument("--tasks", default=",".join(RECIPES),
                        help="comma-separated, from " + ", ".join(RECIPES))
    parser.add_argument("--modes", default="fp32,mixed+xla")
    parser.add_argument("--xla", choices=["on", "auto"], default="auto",
                        help="the fast mode's train.jit_compile: auto (default: only where a "
                             "task's batches have one shape, the Transformer LMs) or on (every "
                             "task; padded-length tasks then recompile per length)")
    args = parser.parse_args()

    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    results = []
    for task in args.tasks.split(","):
        for mode in args.modes.split(","):
            results.append(run(task, mode, args.steps, gpus, args.xla))
            print(json.dumps(results[-1]), flush=True)
    speedups = {}
    for task in args.tasks.split(","):
        by_mode = {r["mode"]: r for r in results if r["task"] == task}
        if {"fp32", "mixed+xla"} <= set(by_mode):
            speedups[task] = round(by_mode["mixed+xla"]["tokens_per_second"]
                                   / by_mode["fp32"]["tokens_per_second"], 2)
    print(json.dumps({"device": gpus[0].name if gpus else "cpu", "gpus": len(gpus),
                      "speedup_mixed_xla_over_fp32": speedups}))


if __name__ == "__main__":
    main()
