"""Language-model speed benchmark; prints one JSON object.

- training: tokens/s of the configs/shakespeare_char.yaml model on Tiny Shakespeare, timed over
  `--steps` steps after a warm-up epoch (so XLA compilation is excluded; it is reported apart).
- generation: tokens/s for `--new-tokens` new tokens at batch 1, with the key/value cache and
  without it (every step re-runs the model over the window), after one warm-up call each; the
  ratio is cached / uncached from the same run.
- recompilation: the time of the first call (compiles), then of a call with a different prompt
  length and different sampling settings (must reuse the compiled loop: about the same as a
  warm call, not the first call's time).

Usage:
    KNLP_DATA_DIR=../shared/data .venv/bin/python scripts/bench_lm.py [--run runs/shakespeare_char]
"""

import argparse
import json
import os
import time


def _timed(function):
    started = time.perf_counter()
    result = function()
    return time.perf_counter() - started, result


def bench_training(cfg, steps):

    from keras_nlp_app.callbacks import EpochTimer
    from keras_nlp_app.tasks import get_task

    lm = get_task("lm")
    from keras_nlp_app.training.schedules import make_optimizer

    train, validation = lm.load_splits(cfg.data, cfg.train.seed)
    tokenizer, _ = lm.prepare_assets(cfg, train, os.path.join("/tmp", f"knlp-bench-{os.getpid()}"))
    preprocessor = lm.build_preprocessor(cfg, tokenizer)
    data, _, _ = lm.datasets_for(cfg, preprocessor, None, train, None, cfg.train.batch_size)
    model = lm.build_model(cfg, preprocessor, None, training=True, batch_size=cfg.train.batch_size)
    model.compile(optimizer=make_optimizer(cfg.train, steps * 2), steps_per_execution=
                  cfg.train.steps_per_execution, **lm.compile_arguments(cfg, None))
    timer = EpochTimer()
    timings = timer.seconds

    warmup = cfg.train.steps_per_execution * 2
    model.fit(data.repeat(), steps_per_epoch=warmup, epochs=1, verbose=0, callbacks=[timer])
    model.fit(data.repeat(), steps_per_epoch=steps, epochs=1, verbose=0, callbacks=[timer])
    tokens = steps * cfg.train.batch_size * cfg.tokenizer.sequence_length
    return preprocessor, {
        "train_tokens_per_s": round(tokens / timings[-1], 1),
        "ms_per_step": round(1000 * timings[-1] / steps, 2),
        "first_steps_seconds_with_compilation": round(timings[0], 2), "warmup_steps": warmup,
        "batch_size": cfg.train.batch_size, "context": cfg.tokenizer.sequence_length,
        "parameters": int(model.count_params())}


def bench_generation(model, preprocessor, new_tokens):
    from keras_nlp_app.tasks import language_model_graphs as lm

    def run(prompt, use_cache, **options):
        return lm.generate_texts(model, preprocessor, [prompt], max_new_tokens=new_tokens,
                                 use_cache=use_cache, seed=1, **options)

    result = {"new_tokens": new_tokens, "batch_size": 1}
    for use_cache in (True, False):
        name = "cached" if use_cache else "uncached"
        first, _ = _timed(lambda cached=use_cache: run("ROMEO:\n", cached, top_k=40))
        warm = min(_timed(lambda cached=use_cache: run("ROMEO:\n", cached, top_k=40))[0]
                   for _ in range(3))
        result[f"{name}_tokens_per_s"] = round(new_tokens / warm, 1)
        result[f"{name}_first_call_seconds"] = round(first, 2)
        if use_cache:
            other, _ = _timed(lambda: run("JULIET:\nO Romeo, Romeo!", True, top_p=0.9,
                                          temperature=0.7))
            result["second_call_new_prompt_length_seconds"] = round(other, 3)
            result["warm_call_seconds"] = round(warm, 3)
    result["cached_over_uncached"] = round(
        result["cached_tokens_per_s"] / result["uncached_tokens_per_s"], 1)
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/shakespeare_char.yaml")
    parser.add_argument("--steps", type=int, default=500, help="timed training steps")
    parser.add_argument("--new-tokens", type=int, default=256)
    parser.add_argument("--run", help="a trained run folder to generate with (default: the "
                                      "benchmark's briefly trained model)")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from keras_nlp_app.config import load_config
    from keras_nlp_app.runs import restore_run
    from keras_nlp_app.tasks import get_task

    lm = get_task("lm")

    cfg = load_config([args.config])
    preprocessor, training = bench_training(cfg, args.steps)
    if args.run:
        run = restore_run(args.run)
        model, preprocessor = run.model, run.preprocessor
    else:
        model = lm.build_model(cfg, preprocessor, None)
    print(json.dumps({"config": args.config, "training": training,
                      "generation": bench_generation(model, preprocessor, args.new_tokens)},
                     indent=2))


if __name__ == "__main__":
    main()
