"""Export an n-gram model as a SavedModel: `serving_default(text[B]) → log_prob[B], num_tokens[B]`.

The vocabulary and every order's n-gram keys are `tf.lookup.StaticHashTable`s and the
probabilities and backoffs constants, so scoring runs in the graph exactly as
`NGramModel.token_log10_probs` does in numpy (ARPA back-off semantics). `log_prob` is the natural
log of P(sentence) including `</s>`; `num_tokens` is words + 1. Loads with TensorFlow and
TensorFlow Text only (Text is needed only for the `word` tokenizer's regex split).
"""

import datetime
import math
import os

import numpy as np
import tensorflow as tf

from keras_nlp_app.errors import UserError
from keras_nlp_app.ngram.corpus import BOS_ID, EOS_ID, UNK_ID
from keras_nlp_app.utils import atomic

_WORD_PATTERN = r"[\p{L}\p{N}_]+|[^\p{L}\p{N}_\s]"


class NGramScorer(tf.Module):
    """Scores raw sentences with an n-gram back-off model held in lookup tables."""

    def __init__(self, model):
        super().__init__(name="ngram_scorer")
        self.order = model.order
        self.vocab_size = model.vocab_size
        self.tokenizer = model.tokenizer
        self.words = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(model.vocabulary), tf.range(model.vocab_size, dtype=tf.int64)),
            default_value=UNK_ID)
        self.rows = [None] + [
            tf.lookup.StaticHashTable(
                tf.lookup.KeyValueTensorInitializer(
                    tf.constant(o.keys, tf.int64), tf.range(len(o.keys), dtype=tf.int64)),
                default_value=-1)
            for o in model.orders[1:]]
        self.log10_prob = [tf.constant(o.log10_prob, tf.float64) for o in model.orders]
        self.log10_backoff = [tf.constant(o.log10_backoff, tf.float64) for o in model.orders]

    def _split(self, text):
        if self.tokenizer == "word":
            import tensorflow_text as tf_text

            return tf_text.regex_split(text, _WORD_PATTERN, _WORD_PATTERN.replace("+", ""))
        return tf.strings.split(text)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def serve(self, text):
        ids = tf.ragged.map_flat_values(self.words.lookup, self._split(text))
        return {"log_prob": self.log_probs(ids),
                "num_tokens": tf.cast(ids.row_lengths() + 1, tf.int32)}

    def log_probs(self, ids):
        """Natural log P(`<s>` ids `</s>`) `[B]` float32 of ragged word ids `[B, None]` (int64)."""
        batch = ids.nrows()
        bos = tf.fill([batch, 1], tf.constant(BOS_ID, tf.int64))
        eos = tf.fill([batch, 1], tf.constant(EOS_ID, tf.int64))
        sentences = tf.concat([bos, ids, eos], axis=1)
        tokens = sentences.flat_values
        row_of = sentences.value_rowids()
        starts = tf.gather(sentences.row_splits, row_of)
        ends = tf.gather(sentences.row_splits, row_of + 1)
        position = tf.range(tf.size(tokens, out_type=tf.int64))
        remaining = ends - position
        history = position - starts

        rows = [tokens]
        for k in range(1, self.order):
            last = tf.concat([tokens[k:], tf.zeros([k], tf.int64)], axis=0)
            previous = rows[-1]
            key = tf.maximum(previous, 0) * self.vocab_size + last
            found = self.rows[k].lookup(key)
            rows.append(tf.where((remaining > k) & (previous >= 0), found, -1))

        predicted = tf.where(tf.not_equal(tokens, BOS_ID))[:, 0]
        hist = tf.gather(history, predicted)
        scores = tf.fill(tf.shape(predicted), tf.constant(np.nan, tf.float64))
        backoff = tf.zeros(tf.shape(predicted), tf.float64)
        for n in range(self.order, 0, -1):
            start = tf.maximum(predicted - (n - 1), 0)
            usable = (hist >= n - 1) & tf.math.is_nan(scores)
            row = tf.where(usable, tf.gather(rows[n - 1], start), -1)
            hit = row >= 0
            prob = tf.gather(self.log10_prob[n - 1], tf.maximum(row, 0))
            scores = tf.where(hit, prob + backoff, scores)
            if n >= 2:
                context = tf.where(usable & ~hit, tf.gather(rows[n - 2], start), -1)
                bo = tf.gather(self.log10_backoff[n - 2], tf.maximum(context, 0))
                backoff = backoff + tf.where(context >= 0, bo, 0.0)
        per_sentence = tf.math.unsorted_segment_sum(
            scores, tf.gather(row_of, predicted), tf.cast(batch, tf.int32))
        return tf.cast(per_sentence * math.log(10), tf.float32)


def export_ngram(model, output, source=""):
    """Writes the next version folder under `output` (atomically, verified) and returns it."""
    from keras_nlp_app.utils.saved_models import NewVersion

    if model.smoothing != "kneser_ney":
        raise UserError(f"only back-off (kneser_ney) n-gram models export; this one is "
                        f"{model.smoothing}")
    with NewVersion(output) as target:
        scorer = NGramScorer(model)
        tf.saved_model.save(scorer, target.path, signatures={"serving_default": scorer.serve})
        os.makedirs(os.path.join(target.path, "assets"), exist_ok=True)
        metadata = {
            "task": "ngram_lm", "version": target.version, "order": model.order,
            "smoothing": model.smoothing, "tokenizer": model.tokenizer,
            "vocabulary_size": model.vocab_size, "source": os.path.abspath(source) if source else "",
            "exported_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "signature": {"serving_default": {"inputs": {"text": "string[B]"},
                                              "outputs": {"log_prob": "float32[B] (natural log)",
                                                          "num_tokens": "int32[B]"}}},
            "versions": {"tensorflow": tf.__version__},
        }
        atomic.write_json(os.path.join(target.path, "assets", "metadata.json"), metadata)
        check = ["the company said", "", "an unseenword appears"]
        from keras_nlp_app.ngram.model import tokenize

        expected = np.array([s["ln_prob"] for s in model.sentence_scores(
            [tokenize(t, model.tokenizer) for t in check])])
        loaded = tf.saved_model.load(target.path).signatures["serving_default"](text=tf.constant(check))
        if not np.allclose(loaded["log_prob"].numpy(), expected, rtol=1e-5, atol=1e-3):
            raise RuntimeError("the exported n-gram model's scores differ from the model's")
    return target.final
