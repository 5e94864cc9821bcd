"""Tiny randomly initialized keras-hub presets of the three tokenizer families, built and saved
with `save_to_preset` (no download): WordPiece (BERT), byte-pair (RoBERTa) and SentencePiece
(ALBERT) encoders, and byte-pair (GPT-2) and SentencePiece (Gemma) decoders."""

import io
import os

WORDS = ["a", "great", "good", "fine", "film", "movie", "dull", "awful", "bad", "plot", "the",
         "acting", "was", "is", "and", "not", "lifeless", "charming", "loved", "hated", "superb",
         "wonderful", "lovely", "terrible", "dreadful", "boring", "actors", "quite", "really",
         "story"]


def _bert(folder):
    import keras_hub

    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ",", ".", "!"] + WORDS
    tokenizer = keras_hub.models.BertTokenizer(vocabulary=vocabulary, lowercase=True)
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=len(vocabulary), num_layers=2, num_heads=2, hidden_dim=16,
        intermediate_dim=32, max_sequence_length=32)
    return backbone, tokenizer


def _byte_pair_vocabulary(specials):
    """A byte-level BPE vocabulary and merges: `specials`, every byte's symbol (as in RoBERTa's
    and GPT-2's vocabularies, so no text is unknown), and merges spelling the first words."""
    from keras_hub.src.tokenizers.byte_pair_tokenizer import bytes_to_unicode

    _, symbols = bytes_to_unicode()
    vocabulary = {t: i for i, t in enumerate(specials + [s for s in symbols if s not in specials])}
    merges = []
    for word in WORDS[:12]:
        spaced = "Ġ" + word
        merged = spaced[:2]
        vocabulary.setdefault(merged, len(vocabulary))
        if f"{spaced[0]} {spaced[1]}" not in merges:
            merges.append(f"{spaced[0]} {spaced[1]}")
        for char in spaced[2:]:
            if f"{merged} {char}" not in merges:
                merges.append(f"{merged} {char}")
            merged += char
            vocabulary.setdefault(merged, len(vocabulary))
    return vocabulary, merges


def _roberta(folder):
    import keras_hub

    vocabulary, merges = _byte_pair_vocabulary(["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    tokenizer = keras_hub.models.RobertaTokenizer(vocabulary=vocabulary, merges=merges)
    backbone = keras_hub.models.RobertaBackbone(
        vocabulary_size=len(vocabulary), num_layers=2, num_heads=2, hidden_dim=16,
        intermediate_dim=32, max_sequence_length=32)
    return backbone, tokenizer


def _gpt2(folder):
    import keras_hub

    vocabulary, merges = _byte_pair_vocabulary(["<|endoftext|>"])
    tokenizer = keras_hub.models.GPT2Tokenizer(vocabulary=vocabulary, merges=merges)
    backbone = keras_hub.models.GPT2Backbone(
        vocabulary_size=len(vocabulary), num_layers=2, num_heads=2, hidden_dim=16,
        intermediate_dim=32, max_sequence_length=64)
    return backbone, tokenizer


def _sentencepiece(**options):
    import sentencepiece

    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter([" ".join(WORDS[i:] + WORDS[:i]) for i in range(len(WORDS))] * 5),
        model_writer=model, vocab_size=60, model_type="unigram", hard_vocab_limit=False,
        minloglevel=2, **options)
    return model.getvalue()


def _gemma(folder):
    import keras_hub

    tokenizer = keras_hub.models.GemmaTokenizer(proto=_sentencepiece(
        pad_id=0, eos_id=1, bos_id=2, unk_id=3, pad_piece="<pad>", eos_piece="<eos>",
        bos_piece="<bos>", unk_piece="<unk>"))
    backbone = keras_hub.models.GemmaBackbone(
        vocabulary_size=tokenizer.vocabulary_size(), num_layers=2, num_query_heads=2,
        num_key_value_heads=1, hidden_dim=16, intermediate_dim=32, head_dim=8)
    return backbone, tokenizer


def _albert(folder):
    import keras_hub

    tokenizer = keras_hub.models.AlbertTokenizer(proto=_sentencepiece(
        pad_id=0, unk_id=1, bos_id=-1, eos_id=-1, user_defined_symbols=["[CLS]", "[SEP]", "[MASK]"],
        pad_piece="<pad>", unk_piece="<unk>"))
    backbone = keras_hub.models.AlbertBackbone(
        vocabulary_size=tokenizer.vocabulary_size(), num_layers=2, num_heads=2, hidden_dim=16,
        embedding_dim=8, intermediate_dim=32, max_sequence_length=32)
    return backbone, tokenizer


FAMILIES = {"wordpiece": _bert, "bpe": _roberta, "sentencepiece": _albert}
DECODERS = {"gpt2": _gpt2, "gemma": _gemma}  # causal-LM families (byte-pair, SentencePiece)


def save_tiny_preset(family, folder):
    """Writes a tiny preset of `family` into `folder` and returns the folder."""
    import keras

    keras.utils.set_random_seed(0)
    backbone, tokenizer = {**FAMILIES, **DECODERS}[family](folder)
    os.makedirs(folder, exist_ok=True)
    backbone.save_to_preset(str(folder))
    tokenizer.save_to_preset(str(folder))
    return str(folder)


def save_transformers_bert(folder):
    """Writes a tiny randomly initialized BERT as Hugging Face Transformers saves one
    (`config.json` with `model_type`, `model.safetensors` with its weight names, `vocab.txt`,
    `tokenizer_config.json`): what a hub download of a BERT-family checkpoint holds. Returns
    (folder, the weights by name)."""
    import json

    import numpy as np
    from safetensors.numpy import save_file

    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ",", ".", "!"] + WORDS
    hidden, intermediate, layers, positions = 16, 32, 2, 32
    rng = np.random.default_rng(0)
    shapes = {"embeddings.word_embeddings.weight": (len(vocabulary), hidden),
              "embeddings.position_embeddings.weight": (positions, hidden),
              "embeddings.token_type_embeddings.weight": (2, hidden),
              "embeddings.LayerNorm.weight": (hidden,), "embeddings.LayerNorm.bias": (hidden,),
              "pooler.dense.weight": (hidden, hidden), "pooler.dense.bias": (hidden,)}
    for i in range(layers):
        block = f"encoder.layer.{i}."
        for name in ("attention.self.query", "attention.self.key", "attention.self.value",
                     "attention.output.dense"):
            shapes[block + name + ".weight"] = (hidden, hidden)  # Linear: [out, in]
            shapes[block + name + ".bias"] = (hidden,)
        shapes[block + "intermediate.dense.weight"] = (intermediate, hidden)
        shapes[block + "intermediate.dense.bias"] = (intermediate,)
        shapes[block + "output.dense.weight"] = (hidden, intermediate)
        shapes[block + "output.dense.bias"] = (hidden,)
        for norm in ("attention.output.LayerNorm", "output.LayerNorm"):
            shapes[block + norm + ".weight"] = (hidden,)
            shapes[block + norm + ".bias"] = (hidden,)
    weights = {name: (1.0 + 0.1 * rng.standard_normal(shape) if name.endswith("LayerNorm.weight")
                      else 0.2 * rng.standard_normal(shape)).astype("float32")
               for name, shape in shapes.items()}
    os.makedirs(folder, exist_ok=True)
    save_file({"bert." + name: value for name, value in weights.items()},
              os.path.join(folder, "model.safetensors"))
    config = {"architectures": ["BertModel"], "model_type": "bert", "vocab_size": len(vocabulary),
              "hidden_size": hidden, "num_hidden_layers": layers, "num_attention_heads": 2,
              "intermediate_size": intermediate, "max_position_embeddings": positions,
              "type_vocab_size": 2, "hidden_act": "gelu", "layer_norm_eps": 1e-12}
    for name, content in (("config.json", config), ("tokenizer_config.json",
                                                     {"do_lower_case": True,
                                                      "tokenizer_class": "BertTokenizer"})):
        with open(os.path.join(folder, name), "w", encoding="utf-8") as f:
            json.dump(content, f)
    with open(os.path.join(folder, "vocab.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(vocabulary) + "\n")
    return str(folder), weights
