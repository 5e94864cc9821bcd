"""Graph code of the pretraining task: fill-mask outputs, masked-token scoring, and the fixed-mask
evaluation shared by run folders and exports."""

import numpy as np

EVAL_SEED = 0  # evaluation masks the same tokens every time


def vocabulary_tensor(tokenizer):
    import tensorflow as tf

    return tf.constant(tokenizer.get_vocabulary())


def fill_mask(run, texts, top_k):
    """serving_default's outputs for `[B]` texts with mask tokens: for each of the M mask
    positions (M = most masks in one text), the `top_k` best tokens and their probabilities
    (`""` and 0 past a text's masks), `mask_count[B]`, and `filled[B]`: the text with every
    mask replaced by its best token."""
    import tensorflow as tf

    preprocessor = run.preprocessor
    inputs, valid = preprocessor(texts)
    probs = tf.nn.softmax(tf.cast(run.model(inputs, training=False), tf.float32), axis=-1)
    top_probs, top_ids = tf.math.top_k(probs, k=top_k)
    tokens = tf.gather(vocabulary_tensor(preprocessor.tokenizer), top_ids)
    keep = valid[:, :, None]
    best = tf.tensor_scatter_nd_update(
        inputs["token_ids"],
        tf.where(valid),
        tf.boolean_mask(top_ids[:, :, 0], valid))
    specials = [i for i in (preprocessor.start_id, preprocessor.end_id, preprocessor.pad_id)
                if i is not None]
    real = tf.reduce_all(tf.stack([tf.not_equal(best, i) for i in specials]), axis=0)
    filled = preprocessor.tokenizer.detokenize(tf.ragged.boolean_mask(best, real))
    return {"top_k_tokens": tf.where(keep, tokens, ""),
            "top_k_probabilities": tf.where(keep, top_probs, 0.0),
            "mask_count": tf.reduce_sum(tf.cast(valid, tf.int32), axis=1),
            "filled": filled}


def masked_lm_outputs(model, preprocessor, token_ids, mask_positions, mask_ids):
    """(log-probability `[B, P]` of each original token, whether the best guess is it `[B, P]`)
    for packed, already masked ids `[B, T]`."""
    import tensorflow as tf

    inputs = preprocessor.model_inputs(token_ids, mask_positions)
    logits = tf.cast(model(inputs, training=False), tf.float32)
    log_probs = tf.nn.log_softmax(logits, axis=-1)
    chosen = tf.gather(log_probs, mask_ids, batch_dims=2)
    correct = tf.cast(tf.equal(tf.argmax(logits, axis=-1, output_type=tf.int32), mask_ids), tf.int32)
    return {"log_prob": chosen, "correct": correct}


def masked_lm_scores(tokenize, score, texts, masking, body_length, batch_size=64):
    """Masked-token loss (nats), perplexity and accuracy over `texts`, masked with a fixed seed.

    Args:
        tokenize: `[str]` → ragged `[B, None]` token ids (no special tokens).
        score: (masked ids `[B, T]`, positions `[B, P]`, original ids `[B, P]`) → dict of numpy
            `log_prob` and `correct`, each `[B, P]`.
        masking: the preprocessor's `masking()` settings.
        body_length: tokens per window.
    """
    from keras_nlp_app.text.masked_lm import fixed_masks, pack_windows, windows

    pieces = []
    for i in range(0, len(texts), 1024):
        pieces += windows(tokenize(texts[i:i + 1024]), body_length)
    packed = pack_windows(pieces, **masking)
    positions, targets, weights, masked = fixed_masks(packed, EVAL_SEED, **masking)
    loss = correct = 0.0
    for i in range(0, len(packed), batch_size):
        out = score(masked[i:i + batch_size], positions[i:i + batch_size], targets[i:i + batch_size])
        w = weights[i:i + batch_size]
        loss -= float(np.sum(out["log_prob"] * w))
        correct += float(np.sum(out["correct"] * w))
    count = float(weights.sum())
    mean = loss / max(count, 1.0)
    return {"examples": len(texts), "windows": len(pieces), "masked_tokens": int(count),
            "loss": round(mean, 6), "perplexity": round(float(np.exp(min(mean, 50.0))), 4),
            "accuracy": round(correct / max(count, 1.0), 6)}
