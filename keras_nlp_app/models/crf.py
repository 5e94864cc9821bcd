"""A linear-chain conditional random field (Lafferty et al. 2001; the output layer of Lample et al.
2016's BiLSTM-CRF), written in Keras 3 ops because tensorflow-addons is gone.

The layer owns the tag-transition scores (plus start and end scores). It passes the per-token
emission scores through unchanged, so the model's output stays `[B, T, K]`; training calls
`negative_log_likelihood` (the forward algorithm) and prediction calls `decode` (Viterbi). Both
honour a `[B, T]` mask of real tokens, which must be a prefix of each row (right padding).
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_nlp_app")
class CRF(keras.layers.Layer):
    """Linear-chain CRF over `num_tags` tags.

    Args:
        num_tags: K, the size of the tag set.

    Example:
        crf = CRF(5)
        emissions = crf(logits)                       # [B, T, 5], unchanged
        loss = crf.negative_log_likelihood(emissions, tags, mask)   # [B]
        best = crf.decode(emissions, mask)            # [B, T] int32
    """

    def __init__(self, num_tags, **kwargs):
        super().__init__(**kwargs)
        self.num_tags = num_tags
        self.supports_masking = True

    def build(self, input_shape):
        k = self.num_tags
        init = keras.initializers.RandomUniform(-0.1, 0.1)
        self.transitions = self.add_weight(name="transitions", shape=(k, k), initializer=init)
        self.start = self.add_weight(name="start", shape=(k,), initializer=init)
        self.end = self.add_weight(name="end", shape=(k,), initializer=init)

    def call(self, emissions):
        return ops.cast(emissions, "float32")

    def compute_output_shape(self, input_shape):
        return input_shape

    def _gold_score(self, emissions, tags, mask):
        maskf = ops.cast(mask, "float32")
        emitted = ops.take_along_axis(emissions, tags[..., None], axis=-1)[..., 0]
        score = ops.sum(emitted * maskf, axis=1) + ops.take(self.start, tags[:, 0])
        pair = ops.take(ops.reshape(self.transitions, [-1]), tags[:, :-1] * self.num_tags + tags[:, 1:])
        score += ops.sum(pair * maskf[:, 1:], axis=1)
        last = ops.maximum(ops.sum(ops.cast(mask, "int32"), axis=1) - 1, 0)
        last_tags = ops.take_along_axis(tags, last[:, None], axis=1)[:, 0]
        return score + ops.take(self.end, last_tags)

    @staticmethod
    def _two_steps_at_least(emissions, mask):
        """Pads a one-token batch with a masked step, so the loops over steps 1.. are never
        empty (a padded step changes nothing)."""
        import tensorflow as tf

        short = tf.maximum(2 - tf.shape(emissions)[1], 0)
        return (tf.pad(emissions, [[0, 0], [0, short], [0, 0]]),
                tf.pad(tf.cast(mask, tf.bool), [[0, 0], [0, short]]))

    def log_partition(self, emissions, mask):
        """log Z `[B]`: the forward algorithm, with padded steps leaving the scores unchanged."""
        import tensorflow as tf

        emissions, mask = self._two_steps_at_least(ops.cast(emissions, "float32"), mask)
        alpha = self.start[None, :] + emissions[:, 0]
        steps = (tf.transpose(emissions[:, 1:], [1, 0, 2]),
                 tf.transpose(ops.cast(mask[:, 1:], "bool"), [1, 0]))

        def step(alpha, inputs):
            emission, real = inputs
            following = ops.logsumexp(alpha[:, :, None] + self.transitions[None], axis=1) + emission
            return ops.where(real[:, None], following, alpha)

        alpha = tf.foldl(step, steps, initializer=alpha)
        return ops.logsumexp(alpha + self.end[None, :], axis=1)

    def negative_log_likelihood(self, emissions, tags, mask):
        """`[B]` negative log-likelihood of the gold `tags [B, T]` (ids; padding any valid id)."""
        emissions = ops.cast(emissions, "float32")
        tags = ops.cast(tags, "int32")
        return self.log_partition(emissions, mask) - self._gold_score(emissions, tags, mask)

    def decode(self, emissions, mask):
        """Viterbi: the best tag sequence `[B, T]` int32 (0 at padded positions)."""
        import tensorflow as tf

        length = tf.shape(emissions)[1]
        emissions, mask = self._two_steps_at_least(ops.cast(emissions, "float32"), mask)
        k = self.num_tags
        score = self.start[None, :] + emissions[:, 0]
        steps = (tf.transpose(emissions[:, 1:], [1, 0, 2]), tf.transpose(mask[:, 1:], [1, 0]))
        identity = tf.range(k, dtype=tf.int32)

        def step(carry, inputs):
            score, _ = carry
            emission, real = inputs
            candidates = score[:, :, None] + self.transitions[None]
            best_previous = tf.argmax(candidates, axis=1, output_type=tf.int32)
            following = tf.reduce_max(candidates, axis=1) + emission
            # a padded step keeps the score and points every tag back at itself
            return (tf.where(real[:, None], following, score),
                    tf.where(real[:, None], best_previous, identity[None, :]))

        batch = tf.shape(emissions)[0]
        scores, pointers = tf.scan(step, steps, initializer=(score, tf.zeros([batch, k], tf.int32)))
        final = tf.concat([score[None], scores], axis=0)[-1]
        last = tf.argmax(final + self.end[None, :], axis=1, output_type=tf.int32)

        def back(tag, pointer):
            return tf.gather(pointer, tag, batch_dims=1)

        earlier = tf.scan(back, pointers, initializer=last, reverse=True)
        path = tf.concat([tf.transpose(earlier, [1, 0]), last[:, None]], axis=1)
        return tf.where(mask, path, 0)[:, :length]

    def get_config(self):
        return {**super().get_config(), "num_tags": self.num_tags}
