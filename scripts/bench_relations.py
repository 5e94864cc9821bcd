"""Relation extraction speed benchmark; prints one JSON object.

- training: sentences/s of `configs/semeval2010.yaml` (the entity-marker BiLSTM) and of the
  Transformer, each a real `knlp train` run in a process of its own, two epochs of `--steps`
  steps; the speed is the second epoch's (the first includes tracing);
- serving: an exported model's sentences/s at batch 1 and 32 through `serving_default(text,
  head_start, head_end, tail_start, tail_end)`, on SemEval training sentences.

Usage:
    KNLP_DATA_DIR=../shared/data .venv/bin/python scripts/bench_relations.py \\
        [--model saved_models/semeval2010] [--steps 40]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

RUN = """
import json, sys
from keras_nlp_app.config import load_config
from keras_nlp_app.training.train import train
run_dir, overrides = sys.argv[1], json.loads(sys.argv[2])
cfg = load_config(["configs/semeval2010.yaml"], overrides)
train(cfg, run_dir=run_dir)
metrics = json.load(open(run_dir + "/metrics.json"))
print(json.dumps({"seconds": metrics["history"][-1]["train_seconds"],
                  "parameters": metrics["parameters"], "batch_size": cfg.train.batch_size}))
"""


def training_speed(model, steps, folder):
    overrides = [f"model.name={model}", "train.epochs=2", f"train.steps_per_epoch={steps}",
                 "train.verbose=0", "train.monitor=loss", "train.early_stopping_patience=0"]
    if model != "relation_bilstm":
        overrides.append("model.params={}")
    done = subprocess.run([sys.executable, "-c", RUN, os.path.join(folder, model),
                           json.dumps(overrides)], capture_output=True, text=True,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    if done.returncode != 0:
        raise SystemExit(f"{model}: {done.stderr.strip()[-1500:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return {"train_sentences_per_s": round(steps * result["batch_size"] / result["seconds"], 1),
            "parameters": result["parameters"]}


def serving_speed(model_dir, batch, repeats):
    import tensorflow as tf
    import tensorflow_text  # noqa: F401

    from keras_nlp_app.data import datasets
    from keras_nlp_app.data.relations import read_relations
    from keras_nlp_app.tasks.relation import span_columns

    sources = read_relations(datasets.split_path("semeval2010_task8", "train")).sources[:batch]
    columns = span_columns(sources)
    inputs = {k: tf.constant(v, dtype=tf.string if k == "text" else tf.int32)
              for k, v in columns.items()}
    signature = tf.saved_model.load(model_dir).signatures["serving_default"]
    signature(**inputs)  # warm up
    started = time.perf_counter()
    for _ in range(repeats):
        signature(**inputs)
    seconds = time.perf_counter() - started
    return round(batch * repeats / seconds, 1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="an exported relation model (version folder or parent)")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--cases", nargs="*", default=["relation_bilstm", "relation_transformer"])
    args = parser.parse_args()
    report = {}
    with tempfile.TemporaryDirectory() as folder:
        for model in args.cases:
            report[model] = training_speed(model, args.steps, folder)
    if args.model:
        from keras_nlp_app.utils.saved_models import resolve_model_dir

        path = resolve_model_dir(args.model)
        report["serving"] = {"model": path,
                             "batch1_sentences_per_s": serving_speed(path, 1, 200),
                             "batch32_sentences_per_s": serving_speed(path, 32, 30)}
    print(json.dumps(report))


if __name__ == "__main__":
    main()
