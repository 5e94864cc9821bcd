"""Word classes from a lexicon, for `model.word_classes`: each vocabulary word gets one class
(WordNet's supersense, or the user's own label), which a model embeds beside the word.

Why: a relation often turns on what kind of thing an entity is (a part, a container, a
producer), and a rare entity word has too few labelled examples to learn that from. A lexicon
says it for every word at once: Zeng et al. 2014 add WordNet's supersenses ("hypernyms") of the
two entities and gain most of their last points on SemEval-2010 Task 8, as the SVM with rich
features does. The classes are a table inside the model (`models/word_classes.py`), so the
exported model needs no lexicon.

Two sources:
- a WordNet 3.x database folder (`index.noun`, `data.noun`, `index.verb`, `data.verb`, e.g.
  Debian's `wordnet-base` in /usr/share/wordnet): a word's class is the lexicographer file
  (`noun.artifact`, `verb.creation`, ...) of its most frequent noun sense, else of its most
  frequent verb sense, after WordNet's own morphology (exception lists, then suffix rules);
- a text file of `word<TAB>class` lines (a gazetteer, a domain lexicon).
"""

import os

import numpy as np

from keras_nlp_app.data.readers import numbered_lines
from keras_nlp_app.errors import DataError, UserError

NO_CLASS = 0  # the class id of a word the lexicon lacks (class ids of the lexicon's classes start at 1)
MAX_WORD_CLASSES = 63  # the most classes a model's table holds (WordNet's noun and verb files: 41)

# WordNet 3.0's lexicographer files (lexnames(5WN)), by the number data files give them
LEXNAMES = (
    "adj.all adj.pert adv.all noun.Tops noun.act noun.animal noun.artifact noun.attribute "
    "noun.body noun.cognition noun.communication noun.event noun.feeling noun.food noun.group "
    "noun.location noun.motive noun.object noun.person noun.phenomenon noun.plant "
    "noun.possession noun.process noun.quantity noun.relation noun.shape noun.state "
    "noun.substance noun.time verb.body verb.change verb.cognition verb.communication "
    "verb.competition verb.consumption verb.contact verb.creation verb.emotion verb.motion "
    "verb.perception verb.possession verb.social verb.stative verb.weather adj.ppl").split()
PARTS_OF_SPEECH = ("noun", "verb")  # searched in this order
SUFFIX_RULES = {  # WordNet's morphy: inflected ending → base ending
    "noun": (("s", ""), ("ses", "s"), ("xes", "x"), ("zes", "z"), ("ches", "ch"), ("shes", "sh"),
             ("men", "man"), ("ies", "y")),
    "verb": (("s", ""), ("ies", "y"), ("es", "e"), ("es", ""), ("ed", "e"), ("ed", ""),
             ("ing", "e"), ("ing", "")),
}


class WordNetClasses:
    """The supersense of a word by WordNet's database folder `root`."""

    def __init__(self, root):
        self.root = root
        self.first_synset = {}  # (pos, lemma) → byte offset of its most frequent synset
        self.exceptions = {}  # (pos, inflected form) → base forms
        self.data = {}
        for pos in PARTS_OF_SPEECH:
            self._read_index(pos)
            self._read_exceptions(pos)
            with open(self._file(f"data.{pos}"), "rb") as f:
                self.data[pos] = f.read()

    def _file(self, name):
        path = os.path.join(self.root, name)
        if not os.path.exists(path):
            raise UserError(f"{self.root} is not a WordNet database folder: it lacks {name}")
        return path

    def _read_index(self, pos):
        path = self._file(f"index.{pos}")
        for number, line in numbered_lines(path):
            if not line or line.startswith(" "):  # the licence at the top
                continue
            fields = line.split()
            try:  # lemma pos synset_cnt p_cnt [ptr...] sense_cnt tagsense_cnt offset...
                pointers = int(fields[3])
                offsets = fields[6 + pointers:]
                self.first_synset[(pos, fields[0])] = int(offsets[0])
            except (IndexError, ValueError):
                raise DataError("is not a WordNet index line", path=path, line=number) from None

    def _read_exceptions(self, pos):
        path = os.path.join(self.root, f"{pos}.exc")
        if not os.path.exists(path):
            return
        for _, line in numbered_lines(path):
            fields = line.split()
            if len(fields) >= 2:
                self.exceptions[(pos, fields[0])] = fields[1:]

    def _lexname(self, pos, offset):
        data = self.data[pos]
        end = data.find(b"\n", offset)
        fields = data[offset:end if end >= 0 else len(data)].split()
        try:
            if int(fields[0]) != offset:
                raise ValueError
            return LEXNAMES[int(fields[1])]
        except (IndexError, ValueError):
            raise DataError(f"has no synset at byte {offset}",
                            path=os.path.join(self.root, f"data.{pos}")) from None

    def base_forms(self, word, pos):
        """WordNet's morphy: the word, its listed exceptions, then its suffix rules' bases."""
        forms = [word, *self.exceptions.get((pos, word), ())]
        forms += [word[:-len(end)] + base for end, base in SUFFIX_RULES[pos]
                  if word.endswith(end) and len(word) > len(end)]
        return forms

    def classify(self, word):
        """`noun.artifact`, `verb.motion`, ... or None."""
        word = word.casefold()
        for pos in PARTS_OF_SPEECH:
            for form in self.base_forms(word, pos):
                offset = self.first_synset.get((pos, form))
                if offset is not None:
                    return self._lexname(pos, offset)
        return None


def read_class_file(path):
    """{word: class} of a `word<TAB>class` file (blank lines and `#` lines skipped)."""
    classes = {}
    for number, line in numbered_lines(path):
        if not line.strip() or line.startswith("#"):
            continue
        word, tab, label = line.partition("\t")
        if not tab or not word or not label.strip() or "\t" in label:
            raise DataError("expected a word, a tab and its class", path=path, line=number)
        if classes.setdefault(word, label.strip()) != label.strip():
            raise DataError(f"gives {word!r} a second class ({label.strip()!r}, first "
                            f"{classes[word]!r})", path=path, line=number)
    if not classes:
        raise DataError("holds no word classes", path=path)
    return classes


def vocabulary_classes(path, vocabulary):
    """The class of every vocabulary entry by the lexicon at `path` (a WordNet folder or a
    `word<TAB>class` file).

    Returns:
        (class names: the lexicon's classes in a fixed order, id i + 1 for name i; ids: int32
        `[len(vocabulary)]`, NO_CLASS for entries the lexicon lacks).
    Raises:
        UserError for a missing path or too many classes; DataError naming the file and line
        for a malformed one.
    """
    if not os.path.exists(path):
        raise UserError(f"model.word_classes: {path} does not exist (a WordNet database folder "
                        f"such as /usr/share/wordnet, or a word<TAB>class file)")
    if os.path.isdir(path):  # a folder is read as WordNet's database, whose files it must hold
        wordnet = WordNetClasses(path)
        names = [name for name in LEXNAMES if name.split(".")[0] in PARTS_OF_SPEECH]
        found = [wordnet.classify(word) for word in vocabulary]
    else:
        lexicon = read_class_file(path)
        names = sorted(set(lexicon.values()))
        folded = {}
        for word, label in lexicon.items():
            folded.setdefault(word.casefold(), label)
        found = [lexicon.get(word) or folded.get(word.casefold()) for word in vocabulary]
    if len(names) > MAX_WORD_CLASSES:
        raise UserError(f"model.word_classes: {path} has {len(names)} classes; a model holds "
                        f"at most {MAX_WORD_CLASSES}")
    index = {name: i + 1 for i, name in enumerate(names)}
    return names, np.asarray([index[c] if c else NO_CLASS for c in found], np.int32)
