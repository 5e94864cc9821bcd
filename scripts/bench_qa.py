"""Extractive QA speed benchmark; prints one JSON object.

- training: questions/s of `configs/squad.yaml` (BiDAF reader) and of the Transformer reader,
  each a real `knlp train` run in a process of its own, two epochs of `--steps` steps; the speed
  is the second epoch's (the first includes tracing);
- serving: SavedModel questions/s at batch 1 and 32, with contexts of 150 and 600 words (SQuAD
  paragraphs joined to that length; a 600-word context spans several windows).

Usage:
    KNLP_DATA_DIR=../shared/data .venv/bin/python scripts/bench_qa.py [--model saved_models/squad]
        [--steps 40] [--cases bidaf_reader transformer_reader]
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
cfg = load_config(["configs/squad.yaml"], overrides)
train(cfg, run_dir=run_dir)
metrics = json.load(open(run_dir + "/metrics.json"))
print(json.dumps({"seconds": metrics["history"][-1]["train_seconds"],
                  "parameters": metrics["parameters"], "batch_size": cfg.train.batch_size}))
"""


def training_speed(model, steps, folder):
    overrides = [f"model.name={model}", "train.epochs=2", f"train.steps_per_epoch={steps}",
                 "train.verbose=0", "data.validation_split=null", "train.monitor=loss",
                 "data.holdout_fraction=0.0"]
    if model != "bidaf_reader":
        overrides.append("model.params={}")
    done = subprocess.run([sys.executable, "-c", RUN, os.path.join(folder, model),
                           json.dumps(overrides)], capture_output=True, text=True,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    if done.returncode != 0:
        raise SystemExit(f"{model}: {done.stderr.strip()[-1500:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return {"train_questions_per_s": round(steps * result["batch_size"] / result["seconds"], 1),
            "parameters": result["parameters"]}


def pairs_of_length(words, count):
    """`count` (question, context) pairs whose contexts are SQuAD paragraphs joined to `words`."""
    from keras_nlp_app.data import datasets, squad

    examples = squad.read_squad(datasets.split_path("squad_v1.1", "train"))
    contexts = list(dict.fromkeys(c for _, c in examples.texts))
    questions = [q for q, _ in examples.texts]
    found, position = [], 0
    for i in range(count):
        parts = []
        while sum(len(p.split()) for p in parts) < words:
            parts.append(contexts[position % len(contexts)])
            position += 1
        found.append((questions[i * 7 % len(questions)], " ".join(" ".join(parts).split()[:words])))
    return found


def serving_speed(model_dir):
    import tensorflow as tf
    import tensorflow_text  # noqa: F401

    serve = tf.saved_model.load(model_dir).signatures["serving_default"]
    result = {}
    for words in (150, 600):
        pairs = pairs_of_length(words, 96)
        for batch, calls in ((1, 32), (32, 3)):
            requests = [pairs[i * batch:(i + 1) * batch] for i in range(calls)]

            def call(chunk):
                return serve(question=tf.constant([q for q, _ in chunk]),
                             context=tf.constant([c for _, c in chunk]))["answer"].numpy()

            call(requests[0])
            started = time.perf_counter()
            for request in requests:
                call(request)
            elapsed = time.perf_counter() - started
            result[f"words{words}_batch{batch}_questions_per_s"] = round(batch * calls / elapsed, 1)
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a QA SavedModel (default: a briefly trained export)")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--cases", nargs="*", default=["bidaf_reader", "transformer_reader"])
    args = parser.parse_args()
    report = {}
    with tempfile.TemporaryDirectory() as folder:
        for model in args.cases:
            report[model] = training_speed(model, args.steps, folder)
        model_dir = args.model
        if model_dir is None:
            from scripts._bench import quick_export

            model_dir = quick_export("configs/squad.yaml", 20, os.path.join(folder, "serve"))
        from keras_nlp_app.utils.saved_models import resolve_model_dir

        report["serving"] = serving_speed(resolve_model_dir(model_dir))
    print(json.dumps(report))


if __name__ == "__main__":
    main()
