"""Keras layers that turn raw strings into model inputs: tokenize, truncate, pad.

The preprocessor is mapped over tf.data during training and traced into the exported signature,
so the model sees exactly the same ids in both places.
"""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="keras_nlp_app")
class ClassifierPreprocessor(keras.layers.Layer):
    """Strings → token ids for a classifier, truncated to `sequence_length`.

    Args:
        tokenizer: a tokenizer layer from `keras_nlp_app.text.tokenizers` (id 0 = padding).
        sequence_length: most tokens kept per text (the head of the text).

    Call with a batch `[B]` of strings to get padded int32 ids `[B, T]` with
    `1 <= T <= sequence_length` (T is the longest text in the batch, so short batches stay
    small); call `token_ids` on one scalar string for the unpadded `[T]` ids that tf.data buckets.
    """

    def __init__(self, tokenizer, sequence_length=128, **kwargs):
        super().__init__(**kwargs)
        self.tokenizer = tokenizer
        self.sequence_length = int(sequence_length)

    def token_ids(self, text):
        return self.tokenizer(text)[: self.sequence_length]

    def call(self, strings):
        ids = self.tokenizer(strings)[:, : self.sequence_length].to_tensor(0)
        width = tf.shape(ids)[1]
        # An all-empty batch still gets one (padding) step so recurrent layers have a time axis.
        return tf.pad(ids, [[0, 0], [0, tf.maximum(1 - width, 0)]])

    def get_config(self):
        return {**super().get_config(), "sequence_length": self.sequence_length}
