"""Sequence tagging: named entities (and any token-level labels) with BiLSTM-CRF and Transformer
taggers.

Examples are sentences as token lists with one tag per token, read from CoNLL column files (any
of IOB1, BIO, BIOES; the model learns `data.tag_scheme`) or from JSONL with raw text and entity
character spans (split into tokens by the same in-graph splitter the export uses). Vocabularies
of case-folded words and of characters, and the tag set, are learned from the training split.
Validation is scored with seqeval at the entity level every epoch (`val_f1`), and the export
turns raw strings into tokens, tags, character offsets and a JSON list of entities.
"""

import dataclasses
import json
import os

import numpy as np

from keras_nlp_app import metrics as metrics_lib
from keras_nlp_app.data import datasets, readers
from keras_nlp_app.errors import ConfigError, DataError, UserError
from keras_nlp_app.tasks import classification
from keras_nlp_app.text import entities

NAME = "tagging"
MODELS = ("bilstm_crf_tagger", "transformer_tagger")
SAMPLES = 5  # validation sentences shown in TensorBoard every epoch
_ASSETS = "tagger.json"


@dataclasses.dataclass
class TagSpace:
    labels: list  # the tag set: id i is labels[i]; "O" is id 0


# -- data -------------------------------------------------------------------------------------


def _format(data_cfg, path):
    if data_cfg.format != "auto":
        return data_cfg.format
    if data_cfg.dataset and not path:
        return datasets.get_dataset(data_cfg.dataset).format
    suffix = os.path.splitext(path)[1].lower()
    return "jsonl" if suffix in (".jsonl", ".json") else "conll"


def align_spans(text, spans, path, line):
    """(tokens, BIO tags) of raw `text` with entity character `spans`; a span must start and
    end on token boundaries of the splitter the export uses."""
    from keras_nlp_app.text.preprocessors import split_with_offsets

    tokens, starts, ends, _, _ = split_with_offsets([text])
    tokens = [t.decode("utf-8") for t in tokens[0].numpy()]
    starts, ends = starts[0].numpy().tolist(), ends[0].numpy().tolist()
    token_spans = []
    for kind, start, end in spans:
        if start not in starts or end not in ends:
            raise DataError(f"entity {text[start:end]!r} ({start}-{end}) does not start and end "
                            f"on token boundaries (tokens: {tokens})", path=path, line=line)
        token_spans.append((kind, starts.index(start), ends.index(end) + 1))
    return tokens, entities.tags_from_spans(token_spans, len(tokens), "bio")


def read_sentences(path, data_cfg, fmt=None):
    """Examples(texts=token lists, labels=tag lists) from a CoNLL or entity-JSONL file."""
    fmt = fmt or _format(data_cfg, path)
    if fmt == "conll":
        return readers.read_conll(path, tag_column=data_cfg.tag_column,
                                  on_bad_line=data_cfg.on_bad_line)
    if fmt != "jsonl":
        raise ConfigError(f"tagging reads conll or jsonl files, not {fmt!r}")
    field = data_cfg.text_field if data_cfg.text_field != "sentence" else "text"
    label = data_cfg.label_field if data_cfg.label_field != "label" else "entities"
    raw = readers.read_entity_jsonl(path, text_field=field, entities_field=label,
                                    on_bad_line=data_cfg.on_bad_line)
    texts, tags, lines = [], [], []
    for text, spans, line in zip(raw.texts, raw.labels, raw.lines):
        tokens, bio = align_spans(text, spans, path, line)
        if tokens:
            texts.append(tokens)
            tags.append(bio)
            lines.append(line)
    return readers.Examples(texts, tags, lines, raw.report)


def _read_split(data_cfg, split):
    source = datasets.split_source(data_cfg, split)
    if source is None:
        return None
    kind, value = source
    if kind == "file":
        return read_sentences(value, data_cfg)
    return read_sentences(datasets.split_path(data_cfg.dataset, value), data_cfg,
                          fmt=datasets.get_dataset(data_cfg.dataset).format)


def load_splits(data_cfg, seed):
    """(train, validation) sentences; a seeded holdout of train when there is no validation."""
    return classification.held_out_and_capped(
        _read_split(data_cfg, "train"), _read_split(data_cfg, "validation"), data_cfg, seed)


# -- assets, model, training ------------------------------------------------------------------


def check_config(cfg):
    if cfg.model.name not in MODELS:
        raise ConfigError(f"model {cfg.model.name!r} is not a tagger; use {' or '.join(MODELS)}")
    if cfg.data.tag_scheme not in entities.SCHEMES:
        raise ConfigError(f"data.tag_scheme must be one of {', '.join(entities.SCHEMES)}")
    if cfg.tokenizer.kind not in ("word", "wordpiece"):
        raise ConfigError("taggers take tokenizer.kind word (word features) or wordpiece "
                          "(also subword pieces, labelled at each word's first piece)")
    if cfg.tokenizer.kind == "wordpiece" and cfg.model.name != "transformer_tagger":
        raise ConfigError("subword pieces (tokenizer.kind: wordpiece) need model.name: "
                          "transformer_tagger")


def _learn_vocabularies(cfg, train):
    import tensorflow as tf

    from keras_nlp_app.text.preprocessors import TaggerPreprocessor
    from keras_nlp_app.text.tokenizers import PAD, UNK

    flat = [token for sentence in train.texts for token in sentence]
    normalized = TaggerPreprocessor.normalize_words(tf.constant(flat)).numpy()
    counts = {}
    for word in normalized:
        counts[word] = counts.get(word, 0) + 1
    ranked = sorted((w for w, c in counts.items() if c >= cfg.tokenizer.min_count),
                    key=lambda w: (-counts[w], w))[:max(cfg.tokenizer.vocab_size - 2, 0)]
    chars = {}
    for token in flat:
        for char in token:
            chars[char] = chars.get(char, 0) + 1
    kinds = sorted({kind for tags in train.labels for kind, _, _ in entities.spans_from_tags(tags)})
    if not kinds:
        raise UserError(f"{train.report.path}: the training data has no entities")
    subwords = None
    if cfg.tokenizer.kind == "wordpiece":
        from keras_nlp_app.text.tokenizers import learn_wordpiece_vocabulary

        subwords = learn_wordpiece_vocabulary([" ".join(s) for s in train.texts],
                                              vocab_size=cfg.tokenizer.subword_vocab_size)
    return {"words": [PAD, UNK] + [w.decode("utf-8") for w in ranked],
            "chars": [PAD, UNK] + sorted(chars, key=lambda c: (-chars[c], c)),
            "tags": entities.tag_set(kinds, cfg.data.tag_scheme), "subwords": subwords}


def prepare_assets(cfg, train, assets_dir):
    """Word and character vocabularies and the tag set from the training split (or, when
    resuming, from the run's assets). Returns (vocabularies, TagSpace)."""
    path = os.path.join(assets_dir, _ASSETS)
    if os.path.exists(path):
        found = load_tokenizer(assets_dir)
        return found, TagSpace(found["tags"])
    found = _learn_vocabularies(cfg, train)
    os.makedirs(assets_dir, exist_ok=True)
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        json.dump(found, f, ensure_ascii=False)
    os.replace(path + ".tmp", path)
    return found, TagSpace(found["tags"])


def load_tokenizer(assets_dir):
    path = os.path.join(assets_dir, _ASSETS)
    if not os.path.exists(path):
        raise UserError(f"{os.path.dirname(assets_dir)}: the run has no assets yet; train it first")
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def read_assets(assets_dir):
    return TagSpace(load_tokenizer(assets_dir)["tags"])


def build_preprocessor(cfg, tokenizer):
    from keras_nlp_app.text.preprocessors import TaggerPreprocessor

    return TaggerPreprocessor(tokenizer["words"], tokenizer["chars"], tokenizer["tags"],
                              sequence_length=cfg.tokenizer.sequence_length,
                              max_word_length=cfg.tokenizer.max_word_length,
                              subword_vocabulary=tokenizer.get("subwords"))


def build_model(cfg, preprocessor, space, *, training=False, batch_size=None):
    from keras_nlp_app.models import build_model as build

    check_config(cfg)
    params = dict(cfg.model.params)
    if cfg.model.name == "transformer_tagger":
        params.setdefault("max_length", preprocessor.sequence_length)
        if preprocessor.subword_vocabulary:
            params["subword_vocab_size"] = len(preprocessor.subword_vocabulary)
    model = build(cfg.model.name, vocab_size=len(preprocessor.word_vocabulary),
                  char_vocab_size=len(preprocessor.char_vocabulary), num_tags=len(space.labels),
                  max_word_length=preprocessor.max_word_length,
                  **params)
    return model


def tag_ids(examples, space, scheme):
    """Tag-id lists in `scheme`; an entity type the tag set lacks (unseen in training) is an
    error naming its file and line."""
    index = {tag: i for i, tag in enumerate(space.labels)}
    known = sorted({tag.split("-", 1)[1] for tag in space.labels if tag != "O"})
    found = []
    for tags, line in zip(examples.labels, examples.lines):
        unknown = [tag for tag in tags if tag != "O" and tag.split("-", 1)[1] not in known]
        if unknown:
            raise DataError(f"entity type {unknown[0].split('-', 1)[1]!r} (tag {unknown[0]!r}) "
                            f"is not one the model knows ({', '.join(known)})",
                            path=examples.report.path, line=line)
        found.append([index[t] for t in entities.convert_tags(tags, scheme)])
    return found


def _sentence_dataset(preprocessor, sentences, targets, *, batch_size, training, seed, window):
    """Batches of (features, tag ids padded with -1). Training shuffles, then sorts each window
    of `window` batches by length so a batch holds sentences of similar length."""
    import tensorflow as tf

    tokens = tf.ragged.constant(sentences, dtype=tf.string)
    tags = tf.ragged.constant(targets, dtype=tf.int32, ragged_rank=1)
    data = tf.data.Dataset.from_tensor_slices((tokens, tags))
    if training:
        data = data.shuffle(len(sentences), seed=seed, reshuffle_each_iteration=True)
        if window > 1:
            def sort(tokens, tags):
                order = tf.argsort(tokens.row_lengths())
                return tf.gather(tokens, order), tf.gather(tags, order)

            data = data.ragged_batch(batch_size * window).map(sort).unbatch()
    data = data.ragged_batch(batch_size)
    if training and window > 1:
        data = data.shuffle(window * 4, seed=seed)
    length = preprocessor.sequence_length
    data = data.map(lambda t, y: (preprocessor.features(t), y[:, :length].to_tensor(-1)),
                    num_parallel_calls=tf.data.AUTOTUNE)
    return data.prefetch(tf.data.AUTOTUNE)


def datasets_for(cfg, preprocessor, space, train, validation, global_batch):
    scheme = cfg.data.tag_scheme
    common = dict(batch_size=global_batch, seed=cfg.train.seed, window=cfg.train.sort_window)
    train_data = _sentence_dataset(preprocessor, train.texts, tag_ids(train, space, scheme),
                                   training=True, **common)
    validation_data = None
    if validation is not None:
        validation_data = _sentence_dataset(preprocessor, validation.texts,
                                            tag_ids(validation, space, scheme), training=False,
                                            **common)
    return train_data, validation_data, -(-len(train.texts) // global_batch)


def compile_arguments(cfg, space):
    """The model computes its own loss (CRF likelihood or masked cross-entropy). No XLA unless
    asked: batches are padded to their own longest sentence."""
    return {"jit_compile": cfg.train.jit_compile == "on"}


def monitorable(data_cfg, with_validation):
    return ["loss"] + (["val_loss", "val_f1"] if with_validation else [])


def predict_tags(model, preprocessor, sentences, batch_size=128):
    """Tag strings for token lists (batched by length; tokens past `sequence_length` get O)."""
    import tensorflow as tf

    memo = model.__dict__.setdefault("_knlp_tag", {})
    if "fn" not in memo:
        memo["fn"] = tf.function(
            lambda tokens: model.predict_tags(preprocessor.features(tokens)),
            input_signature=[tf.RaggedTensorSpec([None, None], tf.string, 1)])
    tags = np.array(preprocessor.tags)
    order = sorted(range(len(sentences)), key=lambda i: len(sentences[i]))
    found = [None] * len(sentences)
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        ids = memo["fn"](tf.ragged.constant([sentences[i] for i in chunk], dtype=tf.string,
                                            row_splits_dtype=tf.int64)).numpy()
        for row, i in enumerate(chunk):
            n = len(sentences[i])
            kept = tags[ids[row, :min(n, ids.shape[1])]].tolist()
            found[i] = kept + ["O"] * (n - len(kept))
    return found


def score(predicted, gold):
    """seqeval entity-level precision, recall and F1 (micro), and per type."""
    return {"examples": len(gold), **metrics_lib.entity_report(gold, predicted)}


def callbacks(*, cfg, run_dir, preprocessor, model, validation_data, validation_examples, space):
    from keras_nlp_app.training.callbacks import DecodingReport

    if validation_data is None:
        return []
    sentences, gold = validation_examples.texts, validation_examples.labels

    def report(current):
        predicted = predict_tags(current, preprocessor, sentences)
        samples = [(" ".join(s), " ".join(g), " ".join(p))
                   for s, g, p in zip(sentences[:SAMPLES], gold[:SAMPLES], predicted[:SAMPLES])]
        return metrics_lib.entity_report(gold, predicted)["f1"], samples

    return [DecodingReport(report, os.path.join(run_dir, "logs", "validation"), metric="f1",
                           columns=("tokens", "gold", "predicted"))]


def final_metrics(cfg, preprocessor, model, space, validation, run_dir):
    if validation is None:
        return {}
    return score(predict_tags(model, preprocessor, validation.texts), validation.labels)


# -- serving ----------------------------------------------------------------------------------


def _json_string(strings):
    import tensorflow as tf

    for pattern, rewrite in ((r"\\", r"\\\\"), ('"', '\\\\"'), ("\n", r"\\n"), ("\r", r"\\r"),
                             ("\t", r"\\t"), (r"[\x00-\x1f]", " ")):
        strings = tf.strings.regex_replace(strings, pattern, rewrite)
    return tf.strings.join(['"', strings, '"'])


def entity_outputs(text, tokens, tags, char_starts, char_ends, byte_starts, byte_ends):
    """`entities [B]`: a JSON list per text of {"text", "type", "start", "end"} (characters of
    the input, end exclusive), from ragged token tags and offsets."""
    import tensorflow as tf

    dense_tags = tags.to_tensor("O")
    mask = tf.sequence_mask(tags.row_lengths(), tf.shape(dense_tags)[1])
    starts, ends = entities.graph_entity_bounds(dense_tags, mask)
    positions = tf.broadcast_to(tf.range(tf.shape(dense_tags)[1], dtype=tf.int64),
                                tf.shape(dense_tags))
    first = tf.ragged.boolean_mask(positions, starts)
    last = tf.ragged.boolean_mask(positions, ends)

    def pick(values, where):
        return tf.gather(values.to_tensor(0) if values.dtype != tf.string else values.to_tensor(""),
                         where, batch_dims=1)

    kind = tf.strings.regex_replace(pick(tags, first), "^[^-]*-", "")
    begin, finish = pick(byte_starts, first), pick(byte_ends, last)
    rows = tf.cast(first.value_rowids(), tf.int64)
    surface = tf.strings.substr(tf.gather(text, rows), begin.flat_values,
                                finish.flat_values - begin.flat_values)
    items = tf.strings.join([
        '{"text": ', _json_string(surface), ', "type": ', _json_string(kind.flat_values),
        ', "start": ', tf.strings.as_string(pick(char_starts, first).flat_values),
        ', "end": ', tf.strings.as_string(pick(char_ends, last).flat_values), "}"])
    joined = tf.strings.reduce_join(first.with_flat_values(items), axis=1, separator=", ")
    return tf.strings.join(["[", joined, "]"])


def _tag_strings(run, tokens):
    import tensorflow as tf

    ids = run.model.predict_tags(run.preprocessor.features(tokens))
    tags = tf.gather(tf.constant(run.preprocessor.tags), ids)
    return tf.RaggedTensor.from_tensor(tags, lengths=tokens.row_lengths())


def serve(run, text):
    """serving_default: tokens, tags, start_offsets, end_offsets (`[B, T]`, padded with "" and
    -1; offsets in characters of the input) and `entities [B]` (JSON)."""
    import tensorflow as tf

    text = tf.convert_to_tensor(text)
    tokens, char_starts, char_ends, byte_starts, byte_ends = run.preprocessor.split(text)
    tags = _tag_strings(run, tokens)
    return {"tokens": tokens.to_tensor(""), "tags": tags.to_tensor(""),
            "start_offsets": char_starts.to_tensor(-1), "end_offsets": char_ends.to_tensor(-1),
            "entities": entity_outputs(text, tokens, tags, char_starts, char_ends, byte_starts,
                                       byte_ends)}


def export_signatures(run):
    """serving_default (raw text) and tag_tokens (pre-tokenized `[B, T]` tokens padded with "",
    for scoring against gold tokenization, e.g. `knlp evaluate` on a CoNLL file)."""
    import tensorflow as tf

    def tag_tokens(tokens):
        ragged = tf.RaggedTensor.from_tensor(tokens, padding="")
        return {"tags": _tag_strings(run, ragged).to_tensor("")}

    return {"serving_default": (run.serve, [tf.TensorSpec([None], tf.string, name="text")]),
            "tag_tokens": (tag_tokens, [tf.TensorSpec([None, None], tf.string, name="tokens")])}


def export_metadata(run):
    preprocessor = run.preprocessor
    return {"labels": preprocessor.tags, "tag_scheme": run.cfg.data.tag_scheme,
            "tokenizer": {"kind": "tagger", "vocabulary_size": len(preprocessor.word_vocabulary),
                          "characters": len(preprocessor.char_vocabulary),
                          "sequence_length": preprocessor.sequence_length}}


def check_export(run, reloaded, texts=None):
    """The export's entities and tags equal the trained model's on a few texts, and on a batch
    of one one-word text and of texts without entities (the edge shapes of the graph)."""
    import tensorflow as tf

    texts = texts or ["Angela Merkel visited Paris with Siemens.", "", "Zoë lives in Köln!"]
    for batch in (texts, ["Berlin"], [""], ["the , of ."]):
        expected = {k: v.numpy() for k, v in run.serve(tf.constant(batch)).items()}
        got = {k: v.numpy() for k, v in reloaded.signatures["serving_default"](
            text=tf.constant(batch)).items()}
        for key, value in expected.items():
            if not np.array_equal(value, got[key]):
                raise RuntimeError(f"the exported model's {key} is {got[key]!r}, the trained "
                                   f"model's {value!r}")


def label_space_from_metadata(metadata):
    return TagSpace(metadata["labels"])


def evaluate_target(info, *, data=None, split=None):
    """`knlp evaluate` for a tagger: precision, recall, f1 (entity level, micro), per_type."""
    data_cfg = info.run_config.data
    if data is not None:
        sentences = read_sentences(data, data_cfg)
    else:
        train, validation = load_splits(data_cfg, info.run_config.train.seed)
        sentences = train if split == "train" else validation
        if sentences is None:
            raise UserError(f"{info.path}: its config names no {split or 'validation'} data; use --data")
    tag_ids(sentences, info.space, info.run_config.data.tag_scheme)  # unknown types name their line
    report = {"task": NAME, **score(tag_sentences(info, sentences.texts), sentences.labels)}
    if sentences.report.skipped:
        report["skipped_lines"] = sentences.report.skipped
    return report


def tag_sentences(info, sentences):
    """Tags for pre-tokenized sentences from a run folder or a SavedModel (`tag_tokens`)."""
    import tensorflow as tf

    if info.is_run:
        from keras_nlp_app.training.train import restore_run

        run = restore_run(info.path)
        return predict_tags(run.model, run.preprocessor, sentences)
    from keras_nlp_app.export.saved_model import load_saved_model

    signature = load_saved_model(info.path).signatures["tag_tokens"]
    found = []
    for start in range(0, len(sentences), 128):
        chunk = sentences[start:start + 128]
        width = max(len(s) for s in chunk) or 1
        padded = tf.constant([s + [""] * (width - len(s)) for s in chunk])
        tags = signature(tokens=padded)["tags"].numpy()
        for sentence, row in zip(chunk, tags):
            found.append([t.decode("utf-8") or "O" for t in row[:len(sentence)]]
                         + ["O"] * (len(sentence) - len(row)))
    return found
