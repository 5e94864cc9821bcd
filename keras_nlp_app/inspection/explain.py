"""`knlp explain`: token attributions of a trained run for raw texts, as a page, a PNG and JSON;
and the same for a few validation texts in TensorBoard at every epoch end."""

import os
import re

import keras
import numpy as np

from keras_nlp_app import runs
from keras_nlp_app.errors import UserError
from keras_nlp_app.inspection import attributions, pages
from keras_nlp_app.utils import atomic


def token_strings(tokenizer, ids):
    """Display strings of token ids: the vocabulary's entries, hashed n-gram buckets (ids past
    the vocabulary) as `<ngram N>`."""
    vocabulary = getattr(tokenizer, "vocabulary", None)
    if isinstance(vocabulary, (list, tuple)):
        return [vocabulary[i] if i < len(vocabulary) else f"<ngram {i - len(vocabulary)}>"
                for i in map(int, ids)]
    if hasattr(tokenizer, "id_to_token"):
        return [tokenizer.id_to_token(int(i)) for i in ids]
    return [str(np.asarray(tokenizer.detokenize([[int(i)]]))[0]) for i in ids]


class Explainer:
    """Explains texts with a restored run's model (`runs.RestoredRun`), as its task's
    `explanation_setup` says."""

    def __init__(self, run):
        if not run.task.explains:
            raise UserError(f"{run.cfg.task} models are not explained token by token; knlp explain "
                            f"takes classifier and tagger runs")
        self.run = run
        attributions.token_embedding(run.model)  # a model without one is refused here
        self._tokenizer = getattr(run.preprocessor, "tokenizer", None)
        self._pad_id = int(getattr(run.preprocessor, "pad_id", 0))

    def explain(self, text, method="integrated_gradients", steps=50):
        setup = self.run.task.explanation_setup(self.run, text)
        words = setup.get("tokens")
        return attributions.explain(
            self.run.model, setup["inputs"], text=text, score_fn=setup["score_fn"],
            classes=setup["classes"], method=method, steps=steps,
            token_strings=(lambda ids: words[:len(ids)]) if words is not None
            else (lambda ids: token_strings(self._tokenizer, ids)),
            keep=lambda ids: ids != self._pad_id)


def _slug(text):
    return re.sub(r"[^\w]+", "-", text.lower()).strip("-")[:40] or "empty"


def explain_run(run_dir, texts, *, method="integrated_gradients", steps=50, output=None):
    """Explains `texts` with the run's best weights; writes one page (and a PNG per text).

    Returns (explanations, page path, PNG paths). The page defaults to
    `<run>/explanations/<first text>-<method>.html`.
    """
    if steps < 1:
        raise UserError(f"--steps must be at least 1, got {steps}")
    if method not in attributions.METHODS:
        raise UserError(f"unknown method {method!r}; choose one of {', '.join(attributions.METHODS)}")
    run = runs.restore_run(run_dir)
    explainer = Explainer(run)
    explanations = [explainer.explain(text, method, steps) for text in texts]
    output = output or os.path.join(run_dir, "explanations", f"{_slug(texts[0])}-{method}.html")
    if not output.endswith(".html"):
        raise UserError(f"{output}: the page is written as HTML; give a path ending in .html")
    stem = output[:-len(".html")]
    images = [f"{stem}.png" if i == 0 else f"{stem}-{i + 1}.png" for i in range(len(texts))]
    for path, explanation in zip(images, explanations):
        atomic.write_bytes(path, pages.explanation_figure_png(explanation))
    atomic.write_text(output, pages.explanations_page(explanations, title=f"Why {os.path.basename(os.path.normpath(run_dir))} decided"))
    return explanations, output, images


class ExplanationSummaries(keras.callbacks.Callback):
    """At each epoch end, integrated gradients of a few validation texts as TensorBoard images
    (`explanations/<i>`), so attributions can be watched as the model learns."""

    def __init__(self, run, texts, log_dir, steps=32):
        super().__init__()
        self.explainer = Explainer(run)
        self.texts = list(texts)
        self.log_dir = log_dir
        self.steps = steps
        self._writer = None

    def on_epoch_end(self, epoch, logs=None):
        import tensorflow as tf

        if self._writer is None:
            self._writer = tf.summary.create_file_writer(self.log_dir)
        with self._writer.as_default():
            for i, text in enumerate(self.texts):
                try:
                    explanation = self.explainer.explain(text, steps=self.steps)
                except UserError:  # a validation text with no tokens: nothing to show
                    continue
                png = pages.explanation_figure_png(explanation)
                tf.summary.image(f"explanations/{i}", tf.image.decode_png(png)[None], step=epoch)
        self._writer.flush()


def explanation_callbacks(cfg, preprocessor, model, space, validation_examples, log_dir):
    """`[ExplanationSummaries]` for `train.explain_samples` validation texts, where the task
    explains its models and the model has a token embedding; else `[]`."""
    texts = getattr(validation_examples, "texts", None)
    run = runs.RestoredRun(cfg, preprocessor, model, space)
    if not cfg.train.explain_samples or not texts or not run.task.explains:
        return []
    try:
        attributions.token_embedding(model)
    except UserError:
        return []
    # a tagger's examples are token lists: explained as the text they spell
    shown = [text if isinstance(text, str) else " ".join(text)
             for text in texts[:cfg.train.explain_samples]]
    return [ExplanationSummaries(run, shown, log_dir)]
