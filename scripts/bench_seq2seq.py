"""Sequence-to-sequence speed benchmark; prints one JSON object.

- training: target tokens/s of the configs/multi30k_en_de.yaml model on Multi30k, timed over
  `--steps` steps after a warm-up (XLA compilation excluded).
- translation: sentences/s of an exported SavedModel (beam search inside the graph, the
  recipe's beam size 4) on Multi30k validation sources at batch 1 and batch 32, after one
  warm-up call per shape. Without `--saved-model` the benchmark exports the briefly trained
  model; an under-trained model tends to write longer outputs, so that figure is a lower bound.

Usage:
    KNLP_DATA_DIR=../shared/data .venv/bin/python scripts/bench_seq2seq.py \
        [--saved-model saved_models/multi30k_en_de] [--steps 200]
"""

import argparse
import json
import os
import tempfile

from _bench import quick_export, texts_per_second


def bench_training(cfg, steps):
    """Target tokens/s of `fit` on the recipe's model and data, after a warm-up epoch."""

    from keras_nlp_app.tasks import get_task

    seq2seq = get_task("seq2seq")
    from keras_nlp_app.callbacks import EpochTimer
    from keras_nlp_app.training.schedules import make_optimizer

    train, _ = seq2seq.load_splits(cfg.data, cfg.train.seed)
    tokenizers, _ = seq2seq.prepare_assets(cfg, train, tempfile.mkdtemp(prefix="bench_assets_"))
    preprocessor = seq2seq.build_preprocessor(cfg, tokenizers)
    data, _, _ = seq2seq.datasets_for(cfg, preprocessor, None, train, None, cfg.train.batch_size)
    model = seq2seq.build_model(cfg, preprocessor, None, training=True)
    model.compile(optimizer=make_optimizer(cfg.train, steps * 2),
                  steps_per_execution=cfg.train.steps_per_execution,
                  **seq2seq.compile_arguments(cfg, None))
    timer, tokens = EpochTimer(), []
    timings = timer.seconds

    model.fit(data.repeat(), steps_per_epoch=steps, epochs=2, verbose=0, callbacks=[timer])
    for _, targets in data.take(steps):
        tokens.append(int((targets.numpy() > 0).sum()))
    return {"steps_timed": steps, "ms_per_step": round(1000 * timings[-1] / steps, 1),
            "train_target_tokens_per_s": round(sum(tokens) / timings[-1], 1),
            "train_sentence_pairs_per_s": round(steps * cfg.train.batch_size / timings[-1], 1),
            "first_epoch_seconds_with_compilation": round(timings[0], 1),
            "batch_size": cfg.train.batch_size, "parameters": int(model.count_params())}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/multi30k_en_de.yaml")
    parser.add_argument("--steps", type=int, default=200, help="timed training steps")
    parser.add_argument("--saved-model", help="SavedModel to time (default: export the bench run)")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from keras_nlp_app.config import load_config
    from keras_nlp_app.tasks import get_task
    from keras_nlp_app.utils.saved_models import resolve_model_dir

    seq2seq = get_task("seq2seq")

    cfg = load_config([args.config])
    training = bench_training(cfg, args.steps)
    model_dir = (resolve_model_dir(args.saved_model) if args.saved_model else
                 quick_export(args.config, args.steps, tempfile.mkdtemp(prefix="bench_seq2seq_")))
    _, validation = seq2seq.load_splits(cfg.data, cfg.train.seed)
    print(json.dumps({"config": args.config, "training": training,
                      "translation": {"saved_model": model_dir, "beam_size": cfg.model.beam_size,
                                      **texts_per_second(model_dir, validation.texts, "output", {1: 40, 32: 3})}},
                     indent=2))


if __name__ == "__main__":
    main()
