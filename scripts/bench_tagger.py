"""Sequence-tagging speed benchmark; prints one JSON object.

- training: tokens/s (real tokens, padding excluded) of `fit` on the recipe's model and CoNLL
  training sentences, timed over `--steps` steps after a warm-up epoch of the same length (which
  also pays XLA's compiles). With `--buckets N`, the same again with `train.length_buckets: N`
  (XLA on, one compiled step per bucket) and the speed-up of one over the other.
- serving: sentences/s of an exported SavedModel's serving_default (raw text in; tokens, tags,
  offsets and entities out) on eng.testa sentences at batch 1 and batch 32, after one warm-up
  call. Without `--saved-model` the benchmark exports the briefly trained model.

Usage:
    KNLP_DATA_DIR=../shared/data .venv/bin/python scripts/bench_tagger.py \
        [--config configs/conll2003.yaml] [--saved-model saved_models/conll2003] [--steps 200]
        [--buckets 4] [--no-serving] [--set train.jit_compile=off ...]
"""

import argparse
import json
import os
import tempfile

from _bench import quick_export, texts_per_second


def bench_training(cfg, steps):
    from keras_nlp_app.tasks import get_task

    tagging = get_task("tagging")
    from keras_nlp_app.callbacks import EpochTimer
    from keras_nlp_app.training.schedules import make_optimizer
    from keras_nlp_app.training.train import precision_scope

    train, _ = tagging.load_splits(cfg.data, cfg.train.seed)
    vocabularies, space = tagging.prepare_assets(cfg, train, tempfile.mkdtemp(prefix="bench_assets_"))
    preprocessor = tagging.build_preprocessor(cfg, vocabularies)
    data, _, _ = tagging.datasets_for(cfg, preprocessor, space, train, None, cfg.train.batch_size)
    compile_arguments = tagging.compile_arguments(cfg, space)
    with precision_scope(cfg.train.mixed_precision, compile_arguments) as precision:
        model = tagging.build_model(cfg, preprocessor, space, training=True)
    model.compile(optimizer=make_optimizer(cfg.train, steps * 2),
                  steps_per_execution=cfg.train.steps_per_execution, **compile_arguments)
    timer = EpochTimer()
    model.fit(data.repeat(), steps_per_epoch=steps, epochs=2, verbose=0, callbacks=[timer])
    # the second epoch's batches: the repeated dataset's steps steps+1 .. 2*steps
    tokens = sum(int((targets.numpy() >= 0).sum())
                 for _, targets in data.repeat().skip(steps).take(steps))
    seconds = timer.seconds[-1]
    return {"steps_timed": steps, "ms_per_step": round(1000 * seconds / steps, 1),
            "train_tokens_per_s": round(tokens / seconds, 1),
            "train_sentences_per_s": round(steps * cfg.train.batch_size / seconds, 1),
            "batch_size": cfg.train.batch_size, "parameters": int(model.count_params()),
            "model": cfg.model.name, "mixed_precision": precision}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/conll2003.yaml")
    parser.add_argument("--steps", type=int, default=200, help="timed training steps")
    parser.add_argument("--saved-model", help="SavedModel to time (default: export the bench run)")
    parser.add_argument("--buckets", type=int, default=0,
                        help="also time the recipe with this many length buckets")
    parser.add_argument("--no-serving", action="store_true", help="time training only")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="config override for every timed run")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from keras_nlp_app.config import load_config
    from keras_nlp_app.tasks import get_task
    from keras_nlp_app.utils.saved_models import resolve_model_dir

    tagging = get_task("tagging")

    cfg = load_config([args.config], args.set)
    training = bench_training(cfg, args.steps)
    report = {"config": args.config, "overrides": args.set, "training": training}
    if args.buckets:
        bucketed = bench_training(load_config([args.config], [
            *args.set, f"train.length_buckets={args.buckets}"]), args.steps)
        report["training_length_buckets"] = {"buckets": args.buckets, **bucketed}
        report["bucketed_speedup"] = round(
            bucketed["train_tokens_per_s"] / training["train_tokens_per_s"], 2)
    if args.no_serving:
        print(json.dumps(report, indent=2))
        return
    model_dir = (resolve_model_dir(args.saved_model) if args.saved_model else
                 quick_export(args.config, args.steps, tempfile.mkdtemp(prefix="bench_tagger_")))
    _, validation = tagging.load_splits(cfg.data, cfg.train.seed)
    sentences = [" ".join(tokens) for tokens in validation.texts]
    report["serving"] = {"saved_model": model_dir,
                         **texts_per_second(model_dir, sentences, "entities", {1: 100, 32: 8})}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
