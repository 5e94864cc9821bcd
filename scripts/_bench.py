"""Helpers the benchmark scripts share: a briefly trained export, and SavedModel throughput."""

import os
import time


def quick_export(config_path, steps, folder):
    """Trains a recipe `steps` steps without validation and exports the result (for timing a
    SavedModel when no trained one is given)."""
    from keras_nlp_app.config import load_config
    from keras_nlp_app.export.saved_model import export_run
    from keras_nlp_app.training.train import train

    quick = load_config([config_path], [
        "data.validation_split=null", "train.monitor=loss", "train.epochs=1",
        f"train.steps_per_epoch={steps}", "train.verbose=0", "train.average_checkpoints=0",
        "train.early_stopping_patience=0"])
    return export_run(train(quick, os.path.join(folder, "run")), os.path.join(folder, "export"))


def texts_per_second(model_dir, texts, output, requests_per_batch_size, warm_up_each=False):
    """{"batch<N>_sentences_per_s": ...}: `serving_default` of a SavedModel called on
    consecutive slices of `texts`, `requests_per_batch_size[N]` calls of N texts each, after one
    warm-up call per batch size (with `warm_up_each`, after one untimed pass over every request:
    the steady state of a server whose XLA programs are compiled for every shape it meets);
    `output` is the output fetched to the host."""
    import tensorflow as tf
    import tensorflow_text  # noqa: F401

    serve = tf.saved_model.load(model_dir).signatures["serving_default"]
    result = {}
    for batch, count in requests_per_batch_size.items():
        requests = [texts[i:i + batch] for i in range(0, batch * count, batch)]
        for request in requests if warm_up_each else requests[:1]:
            serve(text=tf.constant(request))
        started = time.perf_counter()
        for request in requests:
            serve(text=tf.constant(request))[output].numpy()
        elapsed = time.perf_counter() - started
        result[f"batch{batch}_sentences_per_s"] = round(sum(map(len, requests)) / elapsed, 1)
    return result
