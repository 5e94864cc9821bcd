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
from keras_nlp_app.tasks.base import Task, register, text_of, with_vector_words
from keras_nlp_app.tasks.tagging_graphs import entity_outputs, predict_tags, sentence_dataset
from keras_nlp_app.text import entities
from keras_nlp_app.utils import atomic

NAME = "tagging"
MODELS = ("bilstm_crf_tagger", "transformer_tagger", "backbone_tagger")
BACKBONE_MODEL = "backbone_tagger"  # the factory that fine-tunes model.backbone
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
    words = with_vector_words(cfg, [PAD, UNK] + [w.decode("utf-8") for w in ranked], lowercase=True)
    return {"words": words,
            "chars": [PAD, UNK] + sorted(chars, key=lambda c: (-chars[c], c)),
            "tags": entities.tag_set(kinds, cfg.data.tag_scheme), "subwords": subwords}


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


def score(predicted, gold):
    """seqeval entity-level precision, recall and F1 (micro), and per type."""
    return {"examples": len(gold), **metrics_lib.entity_report(gold, predicted)}


def tag_strings(run, tokens):
    """Ragged tag strings of ragged tokens, by a restored tagging run (graph code)."""
    import tensorflow as tf

    ids = run.model.predict_tags(run.preprocessor.features(tokens))
    tags = tf.gather(tf.constant(run.preprocessor.tags), ids)
    return tf.RaggedTensor.from_tensor(tags, lengths=tokens.row_lengths())


@register
class TaggingTask(Task):
    """Sequence tagging (named entities) with BiLSTM-CRF and Transformer taggers."""

    name = NAME
    settings = ("data.tag_scheme",)

    # -- data --------------------------------------------------------------------------------

    def read_file(self, path, data_cfg, fmt=None):
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

    def check_config(self, cfg):
        if cfg.model.name not in MODELS:
            raise ConfigError(f"model {cfg.model.name!r} is not a tagger; use {' or '.join(MODELS)}")
        if cfg.data.tag_scheme not in entities.SCHEMES:
            raise ConfigError(f"data.tag_scheme must be one of {', '.join(entities.SCHEMES)}")
        from keras_nlp_app.text.presets import check_backbone_config

        check_backbone_config(cfg, BACKBONE_MODEL)
        if cfg.tokenizer.kind not in ("word", "wordpiece"):
            raise ConfigError("taggers take tokenizer.kind word (word features) or wordpiece "
                              "(also subword pieces, labelled at each word's first piece)")
        if cfg.tokenizer.vocabulary:
            raise ConfigError("taggers learn their word, character and subword vocabularies from "
                              "the training split; tokenizer.vocabulary is not used by them")
        if cfg.tokenizer.kind == "wordpiece" and cfg.model.name != "transformer_tagger" and not cfg.model.backbone:
            raise ConfigError("subword pieces (tokenizer.kind: wordpiece) need model.name: "
                              "transformer_tagger")

    def monitorable(self, data_cfg, with_validation):
        return ["loss"] + (["val_loss", "val_f1"] if with_validation else [])

    # -- assets, model, training -------------------------------------------------------------

    def prepare_assets(self, cfg, train, assets_dir):
        """Word and character vocabularies and the tag set from the training split (or, when
        resuming, from the run's assets). Returns (vocabularies, TagSpace)."""
        from keras_nlp_app.text import presets

        path = os.path.join(assets_dir, _ASSETS)
        preset_files = os.path.join(assets_dir, presets.PRESET_FOLDER, "tokenizer.json")
        if os.path.exists(path) and (not cfg.model.backbone or os.path.exists(preset_files)):
            found = self.load_tokenizer(assets_dir)
            return found, TagSpace(found["tags"])
        found = _learn_vocabularies(cfg, train)
        if cfg.model.backbone:
            found["preset"] = presets.PresetTokenizer.from_preset(cfg.model.backbone)
            found["preset"].save(assets_dir)
        atomic.write_json(path, {k: v for k, v in found.items() if k != "preset"},
                          ensure_ascii=False, indent=None)
        return found, TagSpace(found["tags"])

    def load_tokenizer(self, assets_dir):
        found = self.read_json_assets(assets_dir, _ASSETS)
        from keras_nlp_app.text import presets

        if os.path.isdir(os.path.join(assets_dir, presets.PRESET_FOLDER)):
            found["preset"] = presets.PresetTokenizer.load(
                os.path.join(assets_dir, presets.PRESET_FOLDER))
        return found

    def read_assets(self, assets_dir):
        return TagSpace(self.load_tokenizer(assets_dir)["tags"])

    def label_space_from_metadata(self, metadata):
        return TagSpace(metadata["labels"])

    def build_preprocessor(self, cfg, tokenizer):
        from keras_nlp_app.text.preprocessors import TaggerPreprocessor

        return TaggerPreprocessor(tokenizer["words"], tokenizer["chars"], tokenizer["tags"],
                                  sequence_length=cfg.tokenizer.sequence_length,
                                  max_word_length=cfg.tokenizer.max_word_length,
                                  subword_vocabulary=tokenizer.get("subwords"),
                                  piece_tokenizer=tokenizer.get("preset"))

    def build_model(self, cfg, preprocessor, space, *, training=False, batch_size=None):
        from keras_nlp_app.models import build_model as build

        self.check_config(cfg)
        params = dict(cfg.model.params)
        if cfg.model.backbone:
            from keras_nlp_app.text.presets import backbone_factory_params

            length = preprocessor.sequence_length
            params.update(backbone_factory_params(
                cfg.model, preprocessor.piece_tokenizer, pieces=2 * length + 2,  # start, end
                allows=f"tokenizer.sequence_length {length} allows", training=training,
                remedy=lambda positions: f"lower it to {(positions - 2) // 2}"))
        elif cfg.model.name == "transformer_tagger":
            params.setdefault("max_length", preprocessor.sequence_length)
            if preprocessor.subword_vocabulary:
                params["subword_vocab_size"] = len(preprocessor.subword_vocabulary)
        model = build(cfg.model.name, vocab_size=len(preprocessor.word_vocabulary),
                      char_vocab_size=len(preprocessor.char_vocabulary), num_tags=len(space.labels),
                      max_word_length=preprocessor.max_word_length,
                      **params)
        return model

    def datasets_for(self, cfg, preprocessor, space, train, validation, global_batch):
        scheme = cfg.data.tag_scheme
        common = dict(batch_size=global_batch, seed=cfg.train.seed, window=cfg.train.sort_window,
                      length_buckets=cfg.train.length_buckets)
        train_data = sentence_dataset(preprocessor, train.texts, tag_ids(train, space, scheme),
                                       training=True, **common)
        validation_data = None
        if validation is not None:
            validation_data = sentence_dataset(preprocessor, validation.texts,
                                                tag_ids(validation, space, scheme), training=False,
                                                **common)
        return train_data, validation_data, -(-len(train.texts) // global_batch)

    def compile_arguments(self, cfg, space):
        """The model computes its own loss (CRF likelihood or masked cross-entropy). XLA when
        asked, or by default with length buckets (unbucketed batches take a shape per length);
        Keras compiles without it, with a warning, where a layer has no XLA kernel (the
        BiLSTM-CRF's fused LSTM)."""
        return {"jit_compile": cfg.train.jit_compile == "on" or (
            cfg.train.jit_compile == "auto" and cfg.train.length_buckets > 0)}

    def callbacks(self, *, cfg, run_dir, preprocessor, model, validation_data, validation_examples, space):
        from keras_nlp_app.callbacks import DecodingReport

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

    def final_metrics(self, cfg, preprocessor, model, space, validation, run_dir):
        if validation is None:
            return {}
        return score(predict_tags(model, preprocessor, validation.texts), validation.labels)

    # -- export ------------------------------------------------------------------------------

    explains = True

    def explanation_setup(self, run, text, most=12):
        """The predicted tag's score (its emission, before the CRF) at each token tagged as part
        of an entity (the first `most`; every token up to `most` when none is): which words
        made the model tag it so. Attributions reach the word embeddings; characters and casing
        stay as they are."""
        import tensorflow as tf

        tokens = run.preprocessor.split(tf.constant([text]))[0]
        words = [text_of(t) for t in tokens[0].numpy().tolist()]
        if not words:
            raise UserError("the text has no tokens to explain")
        inputs = run.preprocessor.features(tokens)
        tag_ids = np.asarray(run.model.predict_tags(inputs))[0][:len(words)]
        tags = [run.preprocessor.tags[i] for i in tag_ids]
        positions = [i for i, tag in enumerate(tags) if tag != "O"][:most] or list(
            range(min(len(words), most)))

        def scores(output):
            return tf.stack([output[:, p, int(tag_ids[p])] for p in positions], axis=-1)

        return {"inputs": inputs, "score_fn": scores, "tokens": words,
                "classes": [f"{words[p]} → {tags[p]}" for p in positions]}

    def serve(self, run, inputs):
        """serving_default: tokens, tags, start_offsets, end_offsets (`[B, T]`, padded with "" and
        -1; offsets in characters of the input) and `entities [B]` (JSON)."""
        import tensorflow as tf

        text = tf.convert_to_tensor(inputs["text"])
        tokens, char_starts, char_ends, byte_starts, byte_ends = run.preprocessor.split(text)
        tags = tag_strings(run, tokens)
        return {"tokens": tokens.to_tensor(""), "tags": tags.to_tensor(""),
                "start_offsets": char_starts.to_tensor(-1), "end_offsets": char_ends.to_tensor(-1),
                "entities": entity_outputs(text, tokens, tags, char_starts, char_ends, byte_starts,
                                           byte_ends)}

    def export_signatures(self, run):
        """serving_default (raw text) and tag_tokens (pre-tokenized `[B, T]` tokens padded with "",
        for scoring against gold tokenization, e.g. `knlp evaluate` on a CoNLL file)."""
        import tensorflow as tf

        def tag_tokens(tokens):
            ragged = tf.RaggedTensor.from_tensor(tokens, padding="")
            return {"tags": tag_strings(run, ragged).to_tensor("")}

        return {**super().export_signatures(run),
                "tag_tokens": (tag_tokens, [tf.TensorSpec([None, None], tf.string, name="tokens")])}

    def export_metadata(self, run):
        preprocessor = run.preprocessor
        return {"labels": preprocessor.tags, "tag_scheme": run.cfg.data.tag_scheme,
                "tokenizer": {"kind": "tagger", "vocabulary_size": len(preprocessor.word_vocabulary),
                              "characters": len(preprocessor.char_vocabulary),
                              "sequence_length": preprocessor.sequence_length}}

    def check_export(self, run, reloaded, texts=None):
        """The export's entities and tags equal the trained model's on a few texts, and on a batch
        of one one-word text and of texts without entities (the edge shapes of the graph)."""
        import tensorflow as tf

        texts = texts or ["Angela Merkel visited Paris with Siemens.", "", "Zoë lives in Köln!"]
        for batch in (texts, ["Berlin"], [""], ["the , of ."]):
            expected = {k: v.numpy() for k, v in self.serve(run, {"text": tf.constant(batch)}).items()}
            got = {k: v.numpy() for k, v in reloaded.signatures["serving_default"](
                text=tf.constant(batch)).items()}
            for key, value in expected.items():
                if not np.array_equal(value, got[key]):
                    raise RuntimeError(f"the exported model's {key} is {got[key]!r}, the trained "
                                       f"model's {value!r}")

    # -- evaluate, predict -------------------------------------------------------------------

    def evaluate(self, target, *, data=None, split=None):
        """precision, recall, f1 (entity level, micro) and per_type."""
        sentences = self.evaluation_examples(target, data, split)
        tag_ids(sentences, target.space, target.run_config.data.tag_scheme)  # unknown types: file:line
        report = {"task": NAME, **score(self.tag_sentences(target, sentences.texts),
                                        sentences.labels)}
        if sentences.report.skipped:
            report["skipped_lines"] = sentences.report.skipped
        return report

    def tag_sentences(self, target, sentences):
        """Tags for pre-tokenized sentences from a run folder or a SavedModel (`tag_tokens`)."""
        import tensorflow as tf

        if target.is_run:
            run = target.restore()
            return predict_tags(run.model, run.preprocessor, sentences)
        signature = target.saved_model().signatures["tag_tokens"]
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

    def format_report(self, report):
        lines = [f"task: tagging   sentences: {report['examples']}",
                 f"entity precision: {report['precision']:.4f}   recall: {report['recall']:.4f}   "
                 f"F1: {report['f1']:.4f}   (seqeval, micro)"]
        per_type = report.get("per_type") or {}
        if per_type:
            width = max(8, *(len(kind) for kind in per_type))
            lines.append(f"\n{'type':<{width}} precision  recall      f1  support")
            for kind, row in per_type.items():
                lines.append(f"{kind:<{width}} {row['precision']:9.4f} {row['recall']:7.4f} "
                             f"{row['f1']:7.4f} {row['support']:8d}")
        return "\n".join(lines)

    def prediction_records(self, inputs, outputs, target):
        records = []
        for i, text in enumerate(inputs["text"]):
            tokens = [text_of(t) for t in outputs["tokens"][i] if t]
            records.append({"text": text, "entities": json.loads(text_of(outputs["entities"][i])),
                            "tokens": tokens,
                            "tags": [text_of(t) for t in outputs["tags"][i][:len(tokens)]]})
        return records

    def format_prediction(self, record):
        found = [f"{e['type']}\t{e['start']}-{e['end']}\t{e['text']}" for e in record["entities"]]
        return "\n".join(found or ["(no entities)"]) + "\n"
