"""A corpus as n-gram estimation and scoring see it: word ids in flat arrays, sentence by
sentence, with `<s>` and `</s>` marked. No strings, no TensorFlow."""

import array
import dataclasses

import numpy as np

UNK, BOS, EOS = "<unk>", "<s>", "</s>"
UNK_ID, BOS_ID, EOS_ID = 0, 1, 2  # their fixed ids, first in every vocabulary


@dataclasses.dataclass
class EncodedSentences:
    """Sentences as one model's word ids: all words in one flat array, and each one's length."""

    words: np.ndarray  # int64 [total words]
    lengths: np.ndarray  # int64 [sentences]

    def __len__(self):
        return len(self.lengths)


def encode_sentences(sentences, word_ids):
    """Token lists (any iterable, read once) as `EncodedSentences`, each word looked up in the
    mapping `word_ids` (a dict whose `__missing__` decides unknown words), at C speed with `map`."""
    words, lengths = array.array("q"), array.array("q")
    for sentence in sentences:
        lengths.append(len(sentence))
        words.extend(map(word_ids.__getitem__, sentence))
    return EncodedSentences(np.frombuffer(words, dtype=np.int64),
                            np.frombuffer(lengths, dtype=np.int64))


def with_sentence_marks(words, lengths):
    """Word ids of consecutive sentences (`lengths` words each) as one flat array
    `<s> w.. </s> <s> ...`, and per position the tokens left in its sentence (itself included)."""
    lengths = lengths + 2
    ends = np.cumsum(lengths)
    ids = np.empty(int(ends[-1]) if len(ends) else 0, dtype=np.int64)
    is_word = np.ones(len(ids), dtype=bool)
    is_word[ends - lengths] = False
    is_word[ends - 1] = False
    ids[is_word] = words
    ids[ends - lengths] = BOS_ID
    ids[ends - 1] = EOS_ID
    remaining = np.repeat(ends, lengths) - np.arange(len(ids))
    return ids, remaining
