"""Classification speed benchmark; prints one JSON object.

For each model family (the configs/sst2_<family>.yaml recipes, on SST-2 training data):
training examples/s of the model (timed after a warm-up epoch, so tracing is excluded) and of the
input pipeline alone (the same tf.data pipeline iterated without the model; the goal is >= 5x the
model's consumption). For one exported SavedModel: p50/p99 latency of a one-sentence request and
throughput at batch 64, in a process that loads it with TensorFlow + TensorFlow Text.

Usage:
    KNLP_DATA_DIR=../shared/data .venv/bin/python scripts/bench_classify.py \
        [--families lstm cnn ...] [--steps 100] [--saved-model saved_models/sentiment]
"""

import argparse
import json
import os
import tempfile
import time

import numpy as np

FAMILIES = ["lstm", "bilstm", "cnn", "fasttext", "transformer"]


def _pipeline(cfg):
    from keras_nlp_app.data.pipelines import make_dataset
    from keras_nlp_app.tasks import get_task, labels
    from keras_nlp_app.text.tokenizers import learn_tokenizer

    classification = get_task("classification")

    train, _ = classification.load_splits(cfg.data, cfg.train.seed)
    tok = cfg.tokenizer
    tokenizer = learn_tokenizer(train.texts, kind=tok.kind, vocab_size=tok.vocab_size,
                                min_count=tok.min_count, lowercase=tok.lowercase)
    preprocessor = classification.build_preprocessor(cfg, tokenizer)
    space = labels.label_space(train)
    targets = labels.targets(labels.encode(train, space), space)
    dataset = make_dataset(train.texts, targets, preprocessor, batch_size=cfg.train.batch_size,
                           training=True, seed=cfg.train.seed,
                           sort_window=cfg.train.sort_window)
    return dataset, preprocessor, space


def bench_family(family, steps):

    from keras_nlp_app.callbacks import EpochTimer
    from keras_nlp_app.config import load_config
    from keras_nlp_app.tasks import get_task
    from keras_nlp_app.training.schedules import make_optimizer

    classification = get_task("classification")

    cfg = load_config([f"configs/sst2_{family}.yaml"])
    dataset, preprocessor, space = _pipeline(cfg)
    import tensorflow as tf

    batches = dataset.repeat().take(steps)
    def count_examples():
        return int(batches.reduce(tf.constant(0), lambda n, batch: n + tf.shape(batch[0])[0]))

    count_examples()  # the first pass fills the cache (tokenization happens here)
    started = time.perf_counter()
    count = count_examples()  # consumed in graph, as fit consumes it: no Python per batch
    pipeline_rate = count / (time.perf_counter() - started)

    model = classification.build_model(cfg, preprocessor, space)
    model.compile(optimizer=make_optimizer(cfg.train, steps * 2),
                  **classification.compile_arguments(cfg, space))
    timer = EpochTimer()
    timings = timer.seconds

    model.fit(dataset.repeat(), steps_per_epoch=steps, epochs=2, verbose=0, callbacks=[timer])
    model_rate = steps * cfg.train.batch_size / timings[-1]
    return {"train_examples_per_s": round(model_rate, 1),
            "pipeline_examples_per_s": round(pipeline_rate, 1),
            "pipeline_over_model": round(pipeline_rate / model_rate, 1),
            "parameters": int(model.count_params()), "batch_size": cfg.train.batch_size}


def bench_saved_model(path, requests=300):
    import tensorflow as tf
    import tensorflow_text  # noqa: F401

    from keras_nlp_app.data import datasets, readers
    from keras_nlp_app.utils.saved_models import resolve_model_dir

    model_dir = resolve_model_dir(path)
    serve = tf.saved_model.load(model_dir).signatures["serving_default"]
    texts = readers.read_examples(datasets.split_path("sst2", "validation")).texts
    for text in texts[:20]:  # warm-up
        serve(text=tf.constant([text]))
    latencies = []
    for i in range(requests):
        batch = tf.constant([texts[i % len(texts)]])
        started = time.perf_counter()
        serve(text=batch)["label"].numpy()
        latencies.append((time.perf_counter() - started) * 1000)
    batch = tf.constant((texts * 2)[:64])
    serve(text=batch)
    started, rounds = time.perf_counter(), 20
    for _ in range(rounds):
        serve(text=batch)["label"].numpy()
    throughput = 64 * rounds / (time.perf_counter() - started)
    return {"model_dir": model_dir, "batch1_p50_ms": round(float(np.percentile(latencies, 50)), 2),
            "batch1_p99_ms": round(float(np.percentile(latencies, 99)), 2),
            "batch64_sentences_per_s": round(throughput, 1)}


def _quick_export(family):
    """Trains a family for a few hundred steps and exports it (when no SavedModel is given)."""
    from keras_nlp_app.config import load_config
    from keras_nlp_app.export.saved_model import export_run
    from keras_nlp_app.training.train import train

    folder = tempfile.mkdtemp(prefix="bench_classify_")
    cfg = load_config([f"configs/sst2_{family}.yaml"],
                      ["train.epochs=1", "train.steps_per_epoch=200", "train.verbose=0"])
    run_dir = train(cfg, run_dir=os.path.join(folder, "run"))
    return export_run(run_dir, os.path.join(folder, "export"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", nargs="+", default=FAMILIES, choices=FAMILIES)
    parser.add_argument("--steps", type=int, default=100, help="timed training steps per family")
    parser.add_argument("--saved-model", help="SavedModel to time; default: a quick lstm export")
    parser.add_argument("--serve-family", default="lstm", choices=FAMILIES,
                        help="family exported when --saved-model is not given")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    result = {"training": {f: bench_family(f, args.steps) for f in args.families}}
    saved_model = args.saved_model or _quick_export(args.serve_family)
    result["serving"] = bench_saved_model(saved_model)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
