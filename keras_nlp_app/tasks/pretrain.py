"""Self-supervised pretraining: a masked-LM encoder (BERT's objective, keras-hub's classes) on
the user's unlabeled text, written as a keras-hub preset folder.

Text is one document per line (txt), or a text field of jsonl/tsv/csv; `data.train_file` may
name several files, comma-separated. Each document's tokens are cut into windows of
`tokenizer.sequence_length`; each epoch masks them anew. The run folder gets `preset/` — config,
weights, tokenizer and its vocabulary, metadata — which `keras_hub.models.Backbone.from_preset`
and `keras_hub.models.Tokenizer.from_preset` load without this package, and which
`model.backbone` fine-tunes (or pretrains further: domain-adaptive pretraining).

With `model.skipgram_epochs: N` a fresh encoder's token embedding (tied to the masked-LM head's
output projection) starts from skip-gram vectors (word2vec, gensim) learned from the same
training tokens in a few minutes: the lexical knowledge a short masked-LM run on two cores
cannot reach by itself (docs/transfer.md). This task has no label space; what
`prepare_assets` hands `build_model` in its place is those vectors (None on a restore or a
resume, whose weights come from the checkpoint).

The export serves fill-mask: `serving_default(text[B])` gives the k best tokens for every mask
token of each text; `masked_lm` and `tokenize` let `knlp evaluate` score an export exactly as a
run folder.
"""

import os

import numpy as np

from keras_nlp_app.data import readers
from keras_nlp_app.data.corpus import read_documents
from keras_nlp_app.data.splits import read_options
from keras_nlp_app.errors import ConfigError, UserError
from keras_nlp_app.tasks import pretrain_graphs as graphs
from keras_nlp_app.tasks.base import Task, register, text_of
from keras_nlp_app.utils import atomic

SKIPGRAM_VECTORS = "skipgram_vectors.npy"  # the warm start, kept in the assets for the record
PRESET = "preset"  # the run folder's keras-hub preset (written at the end of training)
RESERVED = ["[CLS]", "[SEP]", "[MASK]"]  # BERT's special tokens after [PAD] and [UNK]
TOP_K = 5


def _concat(parts, path):
    texts, lines = [], []
    for part in parts:
        texts += part.texts
        lines += part.lines
    report = parts[0].report
    return readers.Examples(texts, [None] * len(texts), lines,
                            type(report)(path=path, examples=len(texts),
                                         skipped=sum(p.report.skipped for p in parts),
                                         first_skipped=report.first_skipped))


def _save_preset(model, preprocessor, folder):
    """The masked-LM task (backbone, head, and keras-hub's own masked-LM preprocessor with the
    tokenizer) as a keras-hub preset, written in a staging folder and renamed into place."""
    hub_preprocessor = model.preprocessor_cls(
        tokenizer=preprocessor.tokenizer, sequence_length=preprocessor.sequence_length,
        mask_selection_rate=preprocessor.mask_selection_rate,
        mask_selection_length=preprocessor.max_predictions)
    clean = type(model).from_config(model.get_config())  # uncompiled: no optimizer in the preset
    clean.set_weights(model.get_weights())
    with atomic.atomic_folder(folder) as staging:
        clean.save_to_preset(staging)
        hub_preprocessor.save_to_preset(staging)


@register
class PretrainTask(Task):
    """Masked-LM pretraining of a keras-hub encoder on unlabeled text."""

    name = "pretrain"
    settings = ("tokenizer.mask_selection_rate", "model.skipgram_epochs")

    # -- data --------------------------------------------------------------------------------

    def read_file(self, path, data_cfg, fmt=None):
        options = read_options(data_cfg, path if fmt is None else None)
        if fmt is not None and data_cfg.format == "auto":
            options["fmt"] = fmt
        options["label_field"] = None  # unlabeled text
        paths = [p.strip() for p in str(path).split(",") if p.strip()]
        parts = [read_documents(p, options) for p in paths]
        return parts[0] if len(parts) == 1 else _concat(parts, path)

    def read_registry(self, data_cfg, split_name):
        """A registry dataset's text: its split's first file (DailyDialog's dialogues, not the
        act and emotion labels beside them)."""
        from keras_nlp_app.data import datasets

        fmt = datasets.get_dataset(data_cfg.dataset).format
        return self.read_file(datasets.split_paths(data_cfg.dataset, split_name)[0], data_cfg, fmt=fmt)

    def check_config(self, cfg):
        if cfg.model.backbone is None and cfg.model.name != "bert_masked_lm":
            raise ConfigError(f"model {cfg.model.name!r} does not pretrain; use bert_masked_lm, or "
                              f"model.backbone: PRESET to continue pretraining a preset")
        if not 0 < cfg.tokenizer.mask_selection_rate < 1:
            raise ConfigError(f"tokenizer.mask_selection_rate must be in (0, 1), got "
                              f"{cfg.tokenizer.mask_selection_rate}")
        if cfg.tokenizer.sequence_length < 8:
            raise ConfigError(f"tokenizer.sequence_length must be at least 8 for masked-LM windows, "
                              f"got {cfg.tokenizer.sequence_length}")
        if cfg.model.backbone:
            from keras_nlp_app.text.presets import check_loadable

            check_loadable(cfg.model.backbone)

    def monitorable(self, data_cfg, with_validation):
        names = ["loss", "accuracy", "perplexity"]
        if with_validation:
            names += ["val_loss", "val_accuracy", "val_perplexity"]
        return names

    # -- assets, model, training -------------------------------------------------------------

    def _tokenizer_dir(self, assets_dir):
        from keras_nlp_app.text.presets import PRESET_FOLDER

        return os.path.join(assets_dir, PRESET_FOLDER)

    def prepare_assets(self, cfg, train, assets_dir):
        """The preset's tokenizer, or BERT's WordPiece with a vocabulary from `tokenizer.vocabulary`
        (knlp vocab) or learned from the training text; saved as preset files in the assets."""
        import keras_hub

        from keras_nlp_app.text import presets, tokenizers

        folder = self._tokenizer_dir(assets_dir)
        if os.path.isfile(os.path.join(folder, "tokenizer.json")):
            return presets.load_tokenizer(folder), None
        tok = cfg.tokenizer
        if cfg.model.backbone:
            tokenizer = presets.load_tokenizer(cfg.model.backbone)
        else:
            if tok.kind != "wordpiece":
                raise ConfigError(f"tokenizer.kind {tok.kind}: masked-LM pretraining learns BERT's "
                                  f"WordPiece; set tokenizer.kind: wordpiece")
            if tok.vocabulary:
                vocabulary = list(self.learned_tokenizer(cfg, train.texts).vocabulary)
                vocabulary += [t for t in RESERVED if t not in vocabulary]
            else:
                vocabulary = tokenizers.learn_tokenizer(
                    train.texts, kind="wordpiece", vocab_size=tok.vocab_size,
                    lowercase=tok.lowercase, reserved=RESERVED).vocabulary
            tokenizer = keras_hub.models.BertTokenizer(
                vocabulary=vocabulary, lowercase=tok.lowercase, special_tokens_in_strings=True)
        presets.save_tokenizer(tokenizer, assets_dir)
        vectors = None
        if cfg.model.skipgram_epochs and not cfg.model.backbone:
            from keras_nlp_app.data.word_vectors import token_vectors
            from keras_nlp_app.models.bert_masked_lm import HIDDEN_DIM

            vectors = token_vectors(tokenizer, train.texts, cfg.model.params.get("hidden_dim", HIDDEN_DIM),
                                       cfg.model.skipgram_epochs, cfg.train.seed)
            with atomic.atomic_path(os.path.join(assets_dir, SKIPGRAM_VECTORS)) as tmp, \
                    open(tmp, "wb") as f:
                np.save(f, vectors)
        return tokenizer, vectors

    def load_tokenizer(self, assets_dir):
        from keras_nlp_app.text import presets

        return presets.load_tokenizer(self._tokenizer_dir(assets_dir))

    def read_assets(self, assets_dir):
        if not os.path.isfile(os.path.join(self._tokenizer_dir(assets_dir), "tokenizer.json")):
            raise UserError(f"{os.path.dirname(assets_dir)}: the run has no assets yet; train it first")
        return None

    def build_preprocessor(self, cfg, tokenizer):
        from keras_nlp_app.text.masked_lm import MaskedLMPreprocessor

        with_segments = True
        if cfg.model.backbone:
            from keras_nlp_app.text.presets import load_backbone

            with_segments = "segment_ids" in load_backbone(cfg.model.backbone, load_weights=False).input
        try:
            return MaskedLMPreprocessor(tokenizer, cfg.tokenizer.sequence_length,
                                        cfg.tokenizer.mask_selection_rate, with_segments=with_segments)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None

    def build_model(self, cfg, preprocessor, space, *, training=False, batch_size=None):
        """`bert_masked_lm` from scratch (its token embedding from `space`, the skip-gram
        vectors, when given), or the preset's masked-LM task (its head's weights too when the
        preset has them) to pretrain further."""
        if cfg.model.backbone:
            import keras_hub

            from keras_nlp_app.text.presets import check_preset, loads_weights

            check_preset(cfg.model.backbone)
            try:
                model = keras_hub.models.MaskedLM.from_preset(
                    cfg.model.backbone, preprocessor=None,
                    load_weights=loads_weights(cfg.model, training))
            except Exception as exc:  # noqa: BLE001 - keras-hub raises many kinds
                raise ConfigError(f"model.backbone: cannot build a masked LM from "
                                  f"{cfg.model.backbone} ({str(exc).splitlines()[0][:200]})") from None
        else:
            from keras_nlp_app.models import build_model as build

            model = build(cfg.model.name, vocabulary_size=preprocessor.vocabulary_size,
                          sequence_length=cfg.tokenizer.sequence_length, **cfg.model.params)
            if training and space is not None:  # the skip-gram warm start
                embedding = model.backbone.token_embedding.embeddings
                # at the scale of the layer's own initializer, beside the position embedding
                embedding.assign(space * (float(np.std(embedding.numpy())) / float(np.std(space))))
        pooler = [layer for layer in model.backbone.layers if layer.name == "pooled_dense"]
        for layer in pooler:  # BERT's pooler serves next-sentence prediction, not the masked LM
            layer.trainable = False
        positions = getattr(model.backbone, "max_sequence_length", None)
        if positions is not None and positions < cfg.tokenizer.sequence_length:
            raise ConfigError(f"tokenizer.sequence_length {cfg.tokenizer.sequence_length} exceeds "
                              f"the backbone's {positions} positions")
        return model

    def windows(self, preprocessor, examples):
        """Every document's token windows (numpy int32 arrays)."""
        from keras_nlp_app.data.pipelines import tokenize_all
        from keras_nlp_app.text.masked_lm import windows

        pieces = windows(tokenize_all(examples.texts, preprocessor), preprocessor.body_length)
        if not pieces:
            raise UserError(f"{examples.report.path}: the text holds no tokens to pretrain on")
        return pieces

    def datasets_for(self, cfg, preprocessor, space, train, validation, global_batch):
        """Training: windows shuffled and masked anew every epoch, by stateless ops keyed by
        (seed, epoch, batch), so a resumed run sees exactly the batches an uninterrupted one
        would. Validation: the fixed masks `knlp evaluate` uses."""
        import tensorflow as tf

        from keras_nlp_app.text.masked_lm import fixed_masks, pack_windows

        pieces = self.windows(preprocessor, train)
        ragged = tf.RaggedTensor.from_row_lengths(
            np.concatenate(pieces).astype(np.int32), [len(p) for p in pieces])
        count, seed = len(pieces), cfg.train.seed

        def one_pass(epoch):
            order = tf.random.experimental.stateless_shuffle(
                tf.range(count, dtype=tf.int64), tf.stack([tf.constant(seed, tf.int64), epoch]))
            batches = tf.data.Dataset.from_tensor_slices(order).batch(global_batch).enumerate()
            return batches.map(lambda i, index: preprocessor.mask(
                preprocessor.pack(tf.gather(ragged, index)),
                tf.stack([tf.constant(seed, tf.int64), epoch * 1_000_003 + i])))

        options = tf.data.Options()
        options.deterministic = True
        # one pass per epoch, forever; shuffles and masks depend only on (seed, epoch, batch)
        train_data = (tf.data.Dataset.range(1 << 30).flat_map(one_pass)
                      .with_options(options).prefetch(tf.data.AUTOTUNE))
        validation_data = None
        if validation is not None:
            masking = preprocessor.masking()
            packed = pack_windows(self.windows(preprocessor, validation), **masking)
            positions, targets, weights, masked = fixed_masks(packed, graphs.EVAL_SEED, **masking)
            inputs = preprocessor.model_inputs(tf.constant(masked), tf.constant(positions))
            validation_data = tf.data.Dataset.from_tensor_slices(
                (inputs, targets, weights)).batch(global_batch).prefetch(tf.data.AUTOTUNE)
        return train_data, validation_data, -(-len(pieces) // global_batch)

    def compile_arguments(self, cfg, space):
        """Cross-entropy averaged over the masked tokens only, and their accuracy."""
        import keras

        extra = {} if cfg.train.jit_compile == "auto" else {"jit_compile": cfg.train.jit_compile == "on"}
        return {"loss": keras.losses.SparseCategoricalCrossentropy(
                    from_logits=True, reduction="mean_with_sample_weight"),
                "weighted_metrics": [keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
                **extra}

    def callbacks(self, *, cfg, run_dir, preprocessor, model, validation_data,
                  validation_examples, space):
        from keras_nlp_app.callbacks import PerplexityLogger

        return [PerplexityLogger()]

    def final_metrics(self, cfg, preprocessor, model, space, validation, run_dir):
        """Writes the run's keras-hub preset (`preset/`) from the best weights, then scores the
        validation text with fixed masks."""
        _save_preset(model, preprocessor, os.path.join(run_dir, PRESET))
        result = {"preset": os.path.abspath(os.path.join(run_dir, PRESET))}
        if validation is not None:
            scores = graphs.masked_lm_scores(preprocessor.ragged_ids, _run_scorer(model, preprocessor),
                                             validation.texts, preprocessor.masking(),
                                             preprocessor.body_length)
            result.update({k: scores[k] for k in ("masked_tokens", "loss", "perplexity", "accuracy")})
        return result

    # -- export and serving ------------------------------------------------------------------

    def serve(self, run, inputs):
        return graphs.fill_mask(run, inputs["text"], min(TOP_K, run.preprocessor.vocabulary_size))

    def export_signatures(self, run):
        import tensorflow as tf

        signatures = super().export_signatures(run)

        def tokenize(text):
            return {"token_ids": run.preprocessor.ragged_ids(text).to_tensor(-1)}

        def masked_lm(token_ids, mask_positions, mask_ids):
            return graphs.masked_lm_outputs(run.model, run.preprocessor, token_ids, mask_positions,
                                            mask_ids)

        ids = [tf.TensorSpec([None, None], tf.int32, name=name)
               for name in ("token_ids", "mask_positions", "mask_ids")]
        signatures["tokenize"] = (tokenize, [tf.TensorSpec([None], tf.string, name="text")])
        signatures["masked_lm"] = (masked_lm, ids)
        return signatures

    def export_metadata(self, run):
        return {"tokenizer": run.preprocessor.describe(), "masking": run.preprocessor.masking(),
                "body_length": run.preprocessor.body_length,
                "mask_token": run.preprocessor.tokenizer.id_to_token(run.preprocessor.mask_id)}

    def _check_texts(self, run):
        mask = run.preprocessor.tokenizer.id_to_token(run.preprocessor.mask_id)
        return [f"the film was {mask} and the plot was {mask} .", f"a {mask} movie", "no mask here",
                ""]

    def check_export(self, run, reloaded, texts=None):
        """Fill-mask probabilities and masked-token log-probabilities must equal the run's."""
        import tensorflow as tf

        texts = texts or self._check_texts(run)
        expected = self.serve(run, {"text": tf.constant(texts)})
        got = reloaded.signatures["serving_default"](text=tf.constant(texts))
        if not np.allclose(expected["top_k_probabilities"].numpy(),
                           got["top_k_probabilities"].numpy(), atol=1e-5):
            raise RuntimeError("the exported model's fill-mask probabilities differ from the run's")

    # -- evaluate and predict ----------------------------------------------------------------

    def evaluate(self, target, *, data=None, split=None):
        """Masked-token loss, perplexity and accuracy with fixed masks (the same tokens for a run
        folder and its export)."""
        examples = self.evaluation_examples(target, data, split)
        if target.is_run:
            run = target.restore()
            pre = run.preprocessor
            scores = graphs.masked_lm_scores(pre.ragged_ids, _run_scorer(run.model, pre),
                                             examples.texts, pre.masking(), pre.body_length)
        else:
            model, metadata = target.saved_model(), target.metadata
            scores = graphs.masked_lm_scores(_saved_tokenizer(model), _saved_scorer(model),
                                             examples.texts, metadata["masking"],
                                             metadata["body_length"])
        report = {"task": self.name, **scores}
        if examples.report.skipped:
            report["skipped_lines"] = examples.report.skipped
        return report

    def prediction_records(self, inputs, outputs, target):
        records = []
        for i, text in enumerate(inputs["text"]):
            masks = int(outputs["mask_count"][i])
            records.append({
                "text": text, "filled": text_of(outputs["filled"][i]),
                "masks": [[{"token": text_of(t), "probability": round(float(p), 6)}
                           for t, p in zip(outputs["top_k_tokens"][i][m],
                                           outputs["top_k_probabilities"][i][m])]
                          for m in range(masks)]})
        return records

    def format_prediction(self, record):
        guesses = "  ".join("/".join(f"{g['token']}:{g['probability']:.2f}" for g in mask[:3])
                            for mask in record["masks"])
        return f"{record['filled']}\t{guesses or '(no mask token)'}"


def _run_scorer(model, preprocessor):
    import tensorflow as tf

    @tf.function(reduce_retracing=True, autograph=False)
    def score(token_ids, positions, targets):
        return graphs.masked_lm_outputs(model, preprocessor, token_ids, positions, targets)

    return lambda *arrays: {k: v.numpy() for k, v in score(*map(tf.constant, arrays)).items()}


def _saved_tokenizer(model):
    import tensorflow as tf

    def tokenize(texts):
        ids = model.signatures["tokenize"](text=tf.constant(texts, dtype=tf.string))["token_ids"]
        return tf.ragged.boolean_mask(ids, ids >= 0)

    return tokenize


def _saved_scorer(model):
    import tensorflow as tf

    signature = model.signatures["masked_lm"]

    def score(token_ids, positions, targets):
        out = signature(token_ids=tf.constant(token_ids), mask_positions=tf.constant(positions),
                        mask_ids=tf.constant(targets))
        return {k: v.numpy() for k, v in out.items()}

    return score
