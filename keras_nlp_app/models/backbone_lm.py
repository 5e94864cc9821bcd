"""A causal language model over any keras-hub decoder backbone (GPT-2, Gemma, Llama, Mistral, ...),
behind the package's decoding interface (`keras_nlp_app.decoding`), so fine-tuning, perplexity,
sampling, beam search and the export work as for the package's own LMs.

Ids are shifted as everywhere a preset is used (`text.presets`): 0 is padding and a token's id is
its tokenizer id + 1, so the logits have one column more than the tokenizer's vocabulary (the
padding column, never a target and never generated).
"""

import keras
from keras import ops

from keras_nlp_app.models.backbone_classifier import apply_finetune, unshifted_ids

_NEG = -1e9


def causal_lm_class(backbone):
    """The keras-hub `CausalLM` subclass made for the backbone's class (GPT2CausalLM for a
    GPT2Backbone, ...); a ValueError for an encoder, which has none."""
    import keras_hub

    found, pending = [], [keras_hub.models.CausalLM]
    while pending:
        cls = pending.pop()
        pending += cls.__subclasses__()
        if getattr(cls, "backbone_cls", None) is type(backbone):
            found.append(cls)
    if not found:
        raise ValueError(f"{type(backbone).__name__} has no causal-LM head in keras-hub (an "
                         f"encoder?); task lm needs a decoder preset such as GPT-2 or Gemma")
    return found[0]


class BackboneLM(keras.Model):
    """`[B, T]` shifted ids → `[B, T, V + 1]` next-token logits through a keras-hub `CausalLM`.

    Args:
        causal_lm: the keras-hub causal LM (backbone and its tied output projection).
        pad_token_id: the tokenizer's padding id, fed where the shifted ids are 0.
        never_generated: shifted ids decoding never picks (padding, start, unknown tokens).
        context_length: the longest window (at most the backbone's positions).
    """

    cache_batch_axis = 0  # keras-hub caches are [B, layers, 2, T, heads, head_dim]

    def __init__(self, causal_lm, pad_token_id, never_generated, context_length, **kwargs):
        super().__init__(**kwargs)
        self.causal_lm = causal_lm
        self.pad_token_id = int(pad_token_id)
        self.never_generated = tuple(int(i) for i in never_generated)
        self.context_length = int(context_length)
        self.vocab_size = int(causal_lm.backbone.vocabulary_size) + 1

    def _token_ids(self, shifted):
        return unshifted_ids(ops.cast(shifted, "int32"), self.pad_token_id)

    def _shifted_logits(self, logits):
        """Logits over shifted ids: a padding column (never likely) before the tokenizer's."""
        logits = ops.cast(logits, "float32")
        padding = ops.full(ops.shape(logits)[:-1] + (1,), _NEG, "float32")
        return ops.concatenate([padding, logits], axis=-1)

    def call(self, shifted, training=False):
        inputs = {"token_ids": self._token_ids(shifted),
                  "padding_mask": ops.ones_like(shifted, dtype="bool")}
        return self._shifted_logits(self.causal_lm(inputs, training=training))

    # -- decoding interface --------------------------------------------------------------------

    def init_cache(self, batch_size):
        return self.prefill(ops.zeros((batch_size, 1), "int32"))

    def prefill(self, tokens):
        """A cache of `context_length` positions holding `tokens [B, W]` at 0..W-1 (the rest is
        masked until written: keras-hub attends to positions up to the update index only)."""
        width = ops.shape(tokens)[1]
        padded = ops.pad(self._token_ids(tokens), [[0, 0], [0, self.context_length - width]],
                         constant_values=self.pad_token_id)
        _, cache = self.causal_lm._build_cache(padded)
        return {"kv": cache}

    def decode_step(self, token, cache, index):
        logits, _, kv = self.causal_lm.call_with_cache(
            self._token_ids(token)[:, None], cache["kv"], index)
        return self._shifted_logits(logits[:, 0]), {"kv": kv}


def fresh_decoder(vocabulary_size, *, num_layers=4, num_heads=4, hidden_dim=256,
                  intermediate_dim=1024, dropout=0.0):
    """A randomly initialized Gemma-architecture decoder (rotary positions, RMS norms, gated
    feed-forward): what causal-LM pretraining from scratch starts from (`model.params.decoder`)."""
    import keras_hub

    if hidden_dim % num_heads:
        raise ValueError(f"hidden_dim {hidden_dim} is not a multiple of num_heads {num_heads}")
    return keras_hub.models.GemmaBackbone(
        vocabulary_size=vocabulary_size, num_layers=num_layers, num_query_heads=num_heads,
        num_key_value_heads=num_heads, hidden_dim=hidden_dim, intermediate_dim=intermediate_dim,
        head_dim=hidden_dim // num_heads, dropout=dropout)


def build_backbone_lm(*, backbone, pad_token_id, never_generated, context_length=None,
                      finetune="full", lora_rank=8):
    """A `BackboneLM` over `backbone` (weights loaded, or fresh when pretraining from scratch).

    Args:
        backbone: a keras-hub decoder backbone.
        pad_token_id, never_generated: see `BackboneLM`.
        context_length: the training and decoding window (default: the backbone's positions).
        finetune: full | frozen | lora (LoRA factors in the attention projections).
        lora_rank: LoRA's rank with finetune lora.
    """
    positions = getattr(backbone, "max_sequence_length", None)
    context_length = context_length or positions
    if not context_length:
        raise ValueError("context_length is required for a backbone without position limits")
    if positions and context_length > positions:
        raise ValueError(f"context_length {context_length} exceeds the backbone's {positions} "
                         f"positions")
    apply_finetune(backbone, finetune, lora_rank)
    causal_lm = causal_lm_class(backbone)(backbone=backbone, preprocessor=None)
    return BackboneLM(causal_lm, pad_token_id, never_generated, context_length, name="backbone_lm")
