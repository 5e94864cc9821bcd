"""Tiny randomly initialized keras-hub presets of the three tokenizer families, built and saved
with `save_to_preset` (no download): WordPiece (BERT), byte-pair (RoBERTa) and SentencePiece
(ALBERT)."""

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


def _roberta(folder):
    import keras_hub
    from keras_hub.src.tokenizers.byte_pair_tokenizer import bytes_to_unicode

    # every byte has a symbol (as in RoBERTa's and GPT-2's vocabularies), so no text is unknown
    _, symbols = bytes_to_unicode()
    tokens = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    vocabulary = {t: i for i, t in enumerate(tokens + [s for s in symbols if s not in tokens])}
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
    tokenizer = keras_hub.models.RobertaTokenizer(vocabulary=vocabulary, merges=merges)
    backbone = keras_hub.models.RobertaBackbone(
        vocabulary_size=len(vocabulary), num_layers=2, num_heads=2, hidden_dim=16,
        intermediate_dim=32, max_sequence_length=32)
    return backbone, tokenizer


def _albert(folder):
    import keras_hub
    import sentencepiece

    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter([" ".join(WORDS[i:] + WORDS[:i]) for i in range(len(WORDS))] * 5),
        model_writer=model, vocab_size=60, model_type="unigram", pad_id=0, unk_id=1, bos_id=-1,
        eos_id=-1, user_defined_symbols=["[CLS]", "[SEP]", "[MASK]"], pad_piece="<pad>",
        unk_piece="<unk>", hard_vocab_limit=False, minloglevel=2)
    tokenizer = keras_hub.models.AlbertTokenizer(proto=model.getvalue())
    backbone = keras_hub.models.AlbertBackbone(
        vocabulary_size=tokenizer.vocabulary_size(), num_layers=2, num_heads=2, hidden_dim=16,
        embedding_dim=8, intermediate_dim=32, max_sequence_length=32)
    return backbone, tokenizer


FAMILIES = {"wordpiece": _bert, "bpe": _roberta, "sentencepiece": _albert}


def save_tiny_preset(family, folder):
    """Writes a tiny preset of `family` into `folder` and returns the folder."""
    import keras

    keras.utils.set_random_seed(0)
    backbone, tokenizer = FAMILIES[family](folder)
    os.makedirs(folder, exist_ok=True)
    backbone.save_to_preset(str(folder))
    tokenizer.save_to_preset(str(folder))
    return str(folder)
