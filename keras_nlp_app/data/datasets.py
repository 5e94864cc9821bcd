"""Registry of named datasets: files, formats, canonical source and checksum.

A dataset is looked up in `$KNLP_DATA_DIR/<name>/` first (the project's shared copies), then in
the download cache (`$KNLP_CACHE_DIR`, default `~/.cache/keras_nlp_app/<name>/`), and otherwise
downloaded from its canonical source and checked against its sha256 (or md5 where only that is
published). A split that a copy lacks is reported with the files it needs and where we looked.
"""

import dataclasses
import gzip
import hashlib
import io
import os
import typing
import urllib.request
import zipfile

from keras_nlp_app.errors import UserError
from keras_nlp_app.utils import atomic

_GH = "https://raw.githubusercontent.com"


@dataclasses.dataclass(frozen=True)
class DataFile:
    """One file of a split, as it lies in the dataset folder, and how to fetch it."""

    filename: str
    url: str
    sha256: str | None = None
    md5: str | None = None
    unpack: str | None = None  # None | "gzip" | "zip:<member>"


@dataclasses.dataclass(frozen=True)
class Dataset:
    name: str
    task: str
    format: str
    splits: dict[str, tuple[DataFile, ...]]
    description: str
    read_options: dict[str, typing.Any] = dataclasses.field(default_factory=dict)
    folder: str | None = None  # the folder under $KNLP_DATA_DIR and the cache; default its name


def _files(*files):
    return tuple(files)


DATASETS = {
    d.name: d
    for d in [
        Dataset(
            name="sst2",
            task="classification",
            format="tsv",
            description="SST-2 binary sentiment (GLUE): 67,349 train / 872 dev sentences",
            read_options={"text_field": "sentence", "label_field": "label", "header": True},
            splits={
                "train": _files(DataFile(
                    "train.tsv",
                    f"{_GH}/eyalbd2/Reproducing-AutoPrompt/6288fb5bec9c572f2492875ae0111df5b6daed11/glue_data/SST-2/train_full.tsv",
                    sha256="48eac26399f8456935f81dd9e3a745c1430adb6c62e233ccfe22db4a0d15d1d1")),
                "validation": _files(DataFile(
                    "dev.tsv",
                    f"{_GH}/eyalbd2/Reproducing-AutoPrompt/6288fb5bec9c572f2492875ae0111df5b6daed11/glue_data/SST-2/dev.tsv",
                    sha256="54a9c12c77e402fc14d6a66a506f24d999f596b0176eb777c972cccc2f9cc4b0")),
            },
        ),
        Dataset(
            name="imdb",
            task="classification",
            format="jsonl",
            description="IMDB movie reviews, binary sentiment (20% subset: id % 5 == 0)",
            read_options={"text_field": "text", "label_field": "label"},
            splits={
                "train": _files(DataFile(
                    "train.jsonl", "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz#subset-train",
                    sha256="f67f94a31d5754a3adf61586de8681de57a22f3e971489cc9c356be0f73822d9")),
                "test": _files(DataFile(
                    "test.jsonl", "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz#subset-test",
                    md5="d84523f304e584fb4616471ba236d3ae")),
            },
        ),
        Dataset(
            name="imdb_unsup",
            task="pretrain",
            format="jsonl",
            folder="imdb",
            description="IMDB's 25,000 unlabeled reviews (about 6M words), for pretraining",
            read_options={"text_field": "text"},
            splits={
                "train": _files(DataFile(
                    "unsup.jsonl", "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz#unsup",
                    md5="1de71452e64358c564e80665b1ca4c4c")),
            },
        ),
        Dataset(
            name="ag_news",
            task="classification",
            format="csv",
            description="AG News topics, 4 classes (train: first 2,000 rows of the official file)",
            read_options={"header": False, "columns": ["label", "title", "description"],
                          "text_field": "description", "label_field": "label"},
            splits={
                "train": _files(DataFile(
                    "train_first2000.csv",
                    f"{_GH}/amrayach/PML/190283295f4bb0b5d9860568b3f02a70ef790e37/datasets/ag_news/train.csv",
                    sha256="fe1b508b8e4b92d6dedf36c21756e0568a7693a0b7fc244bea416e918308318f")),
                "test": _files(DataFile(
                    "test.csv",
                    f"{_GH}/mhjabreel/CharCnn_Keras/555590db4219b1243abb1918effd6a7425a2d75f/data/ag_news_csv/test.csv",
                    md5="d52ea96a97a2d943681189a97654912d")),
            },
        ),
        Dataset(
            name="ptb",
            task="lm",
            format="txt",
            description="Penn Treebank (Mikolov), word-level language modelling",
            splits={
                "train": _files(DataFile(
                    "ptb.train.txt",
                    f"{_GH}/Lasagne/Recipes/d616658de38e69f5036b236b6acbaf6e465ec9bd/examples/penntree/ptb.train.txt.gz",
                    sha256="fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf", unpack="gzip")),
                "validation": _files(DataFile(
                    "ptb.valid.txt",
                    f"{_GH}/Lasagne/Recipes/d616658de38e69f5036b236b6acbaf6e465ec9bd/examples/penntree/ptb.valid.txt.gz",
                    sha256="c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2", unpack="gzip")),
                "test": _files(DataFile(
                    "ptb.test.txt",
                    f"{_GH}/Lasagne/Recipes/d616658de38e69f5036b236b6acbaf6e465ec9bd/examples/penntree/ptb.test.txt.gz",
                    md5="8b80168b89c18661a38ef683c0dc3721", unpack="gzip")),
            },
        ),
        Dataset(
            name="tinyshakespeare",
            task="lm",
            format="txt",
            description="Tiny Shakespeare, character-level LM (nanoGPT split: first 90% train)",
            splits={
                "all": _files(DataFile(
                    "input.txt",
                    f"{_GH}/karpathy/char-rnn/6f9487a6fe5b420b7ca9afb0d7c078e37c1d1b4e/data/tinyshakespeare/input.txt",
                    sha256="86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed")),
            },
        ),
        Dataset(
            name="squad_v1.1",
            task="qa",
            format="json",
            description="SQuAD v1.1 extractive QA: 87,599 train questions (rebuilt; 442 articles, "
                        "hold validation out by article); the official dev set is held back",
            splits={
                "train": _files(DataFile(
                    "train-v1.1.rebuilt.json",
                    "https://github.com/rajpurkar/SQuAD-explorer#explore/1.1/train",
                    md5="0e43f75f0e3a4b974e5047fca989c31b")),
                "dev": _files(DataFile(
                    "dev-v1.1.json",
                    "https://rajpurkar.github.io/SQuAD-explorer/dataset/dev-v1.1.json",
                    sha256="95aa6a52d5d6a735563366753ca50492a658031da74f301ac5238b03966972c9")),
            },
        ),
        Dataset(
            name="semeval2010_task8",
            task="relation",
            format="semeval",
            description="SemEval-2010 Task 8 relation classification: 8,000 train sentences, 19 "
                        "directed labels (hold validation out of train); the test file is held back",
            splits={
                "train": _files(DataFile(
                    "TRAIN_FILE.TXT",
                    "https://github.com/sahitya0000/Relation-Classification#SemEval2010_task8_all_data",
                    md5="00313246d2c0987371ec18478a69ebdc")),
            },
        ),
        Dataset(
            name="conll2003",
            task="tagging",
            format="conll",
            description="CoNLL-2003 English NER (IOB1): eng.train, eng.testa (dev)",
            splits={
                "train": _files(DataFile(
                    "eng.train",
                    f"{_GH}/synalp/NER/c0ea07c81ec3512b5047dcd804b0ac2b10a3bdfc/corpus/CoNLL-2003/eng.train",
                    sha256="eac0822f501353f265383ddf1edb0dcd42a1b6eefd3e383d7074db98c38eb41c")),
                "validation": _files(DataFile(
                    "eng.testa",
                    f"{_GH}/synalp/NER/c0ea07c81ec3512b5047dcd804b0ac2b10a3bdfc/corpus/CoNLL-2003/eng.testa",
                    sha256="aedc4ccbd1ae9795feaa0e86fe72d195b0258abed9d705b630d1c889276fac1e")),
                "test": _files(DataFile(
                    "eng.testb",
                    f"{_GH}/synalp/NER/c0ea07c81ec3512b5047dcd804b0ac2b10a3bdfc/corpus/CoNLL-2003/eng.testb",
                    md5="0fffccef04921ad93da95c72118d1377")),
            },
        ),
        Dataset(
            name="multi30k",
            task="seq2seq",
            format="parallel",
            description="Multi30k task 1, English-German translation (train / val)",
            splits={
                split: _files(*(
                    DataFile(
                        f"{prefix}.{lang}",
                        f"{_GH}/multi30k/dataset/a3d2e0d26b56f3846f66a952536ffed4e401d05a/data/task1/raw/{prefix}.{lang}.gz",
                        sha256=sums[lang], unpack="gzip")
                    for lang in ("en", "de")))
                for split, prefix, sums in [
                    ("train", "train", {
                        "en": "460a15fbd157e34a7a9957ee388c1ca247fe47af3ef25fb50442af6c274e0fc6",
                        "de": "2c2b73fd2b548fbcde3a875e0a78d6ee94d498bfdee6bd3eae3945779e9ddf72"}),
                    ("validation", "val", {
                        "en": "1f2a23d992769b5b3d209b0a10dd0b77c08cceb1f20dfb97ed0aafa49d107227",
                        "de": "660e09eb7e1da2f856ea13ee5ad3cf6d36b3d5b0b733c857e94c5747a3dfc660"}),
                ]
            },
        ),
        Dataset(
            name="spa_eng",
            task="seq2seq",
            format="tsv",
            description="English-Spanish sentence pairs (Tatoeba/Anki), one file, no official split",
            read_options={"header": False, "columns": ["english", "spanish"]},
            splits={
                "all": _files(DataFile(
                    "spa.txt",
                    f"{_GH}/Hoangduc212001/hoang/2cfd26f9551f5c2d614e8000500891801840a438/spa-eng.zip",
                    sha256="6ec60e212f812ee3430f7568ea6f33b6fb080e32193c5952e8da0ee8ba45574c",
                    unpack="zip:spa-eng/spa.txt")),
            },
        ),
        Dataset(
            name="aeslc",
            task="seq2seq",
            format="jsonl",
            description="AESLC email subject line generation (email -> subject)",
            read_options={"text_field": "email", "label_field": "subject"},
            splits={
                "train": _files(DataFile(
                    "train.jsonl", "https://github.com/ryanzhumich/AESLC#enron_subject_line/train",
                    sha256="ccb7bc03f397dcc0c756f79ec91f59ed0b135479e43a0d637d73356e3241ec0c")),
                "validation": _files(DataFile(
                    "dev.jsonl", "https://github.com/ryanzhumich/AESLC#enron_subject_line/dev",
                    sha256="d63224516785ae92190ad81920d794fd82931d5d7dea9d37c9140639ed868ec1")),
                "test": _files(DataFile(
                    "test.jsonl", "https://github.com/ryanzhumich/AESLC#enron_subject_line/test",
                    md5="7f14909ceb228554b9fa1910e85b1062")),
            },
        ),
        Dataset(
            name="dailydialog",
            task="seq2seq",
            format="dialog",
            description="DailyDialog open-domain dialogues, turns separated by __eou__",
            splits={
                split: _files(*(
                    DataFile(
                        f"dialogues{part}_{split}.txt",
                        f"{_GH}/mbellmbell/gpt2-dialog-test/cc73f1b719e1ed598b2bfebb964c9f98ff3f059b/data/dailydialog/{split}.zip",
                        sha256=sha, unpack=f"zip:{split}/dialogues{part}_{split}.txt")
                    for part, sha in sums.items()))
                for split, sums in [
                    ("train", {
                        "": "2128f3b82140b7d72d8d5bb989e5982a0394e4e40655995270d84c7eeee373b1",
                        "_act": "e910d5cfedc500d03dbedd3bcf8661ae8cf0e44d029e56a291f49a7b67042adf",
                        "_emotion": "5c94e57c6e6c6641f4b1386513085f9d9b934229e732a556424ca7dfae4b6c77"}),
                    ("validation", {
                        "": "2ad64701fe3a4449e7a6ee7cdc6c2a71c80f77b8a34f708ac0532395f499081c",
                        "_act": "fbeee7a1b2927c9cb33d6fdc384bb3ea55abf040928d2de4dcea57ab4a669682",
                        "_emotion": "3d4094299a995e998bbc3492ce1755c9abc1e7f56500c840e83b12dd16580596"}),
                ]
            },
        ),
        Dataset(
            name="samsum",
            task="seq2seq",
            format="csv",
            description="SAMSum dialogue summarization (validation only)",
            read_options={"header": True, "text_field": "dialogue", "label_field": "summary"},
            splits={
                "validation": _files(DataFile(
                    "val.csv",
                    f"{_GH}/BinWang28/LA-BART/10db0f0ca99970aefc6e547b2c3c56ab4c161e66/data/samsum/val.csv",
                    sha256="6a7604df2c4abcac7787944a8bdbf8b249fe6ccbf22e6881daefa44fc9b9b086")),
            },
        ),
    ]
}


def get_dataset(name):
    """Returns the registry entry for `name`, or a UserError listing the known names."""
    if name not in DATASETS:
        raise UserError(f"unknown dataset {name!r}; known datasets: {', '.join(sorted(DATASETS))}")
    return DATASETS[name]


def data_dir():
    return os.environ.get("KNLP_DATA_DIR") or None


def cache_dir():
    return os.environ.get("KNLP_CACHE_DIR") or os.path.join(
        os.path.expanduser("~"), ".cache", "keras_nlp_app")


def _digest(path, algorithm):
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _checksum_ok(path, spec):
    if spec.sha256:
        return _digest(path, "sha256") == spec.sha256
    if spec.md5:
        return _digest(path, "md5") == spec.md5
    return True


def _download(spec, target, timeout=30):
    """Fetches one file into `target` (atomically) and checks its sum."""
    if "#" in spec.url:
        raise UserError(
            f"{spec.filename} has no single-file download (source: {spec.url.split('#')[0]}); "
            f"place a copy in $KNLP_DATA_DIR")
    with urllib.request.urlopen(spec.url, timeout=timeout) as response:
        payload = response.read()
    if spec.unpack == "gzip":
        payload = gzip.decompress(payload)
    elif spec.unpack and spec.unpack.startswith("zip:"):
        with zipfile.ZipFile(io.BytesIO(payload)) as archive:
            payload = archive.read(spec.unpack[4:])
    with atomic.atomic_path(target) as tmp:
        with open(tmp, "wb") as f:
            f.write(payload)
        if not _checksum_ok(tmp, spec):
            raise UserError(f"{spec.url}: checksum mismatch for {spec.filename}; refusing to use it")


def split_paths(name, split, download=True):
    """Paths of the files of one split of a registered dataset, fetching them if needed.

    Looks in `$KNLP_DATA_DIR/<name>/`, then the cache, then downloads into the cache. Raises a
    one-line UserError naming the needed files and the places looked in when none works.
    """
    dataset = get_dataset(name)
    if split not in dataset.splits:
        raise UserError(
            f"dataset {name} has no split {split!r}; its splits: {', '.join(dataset.splits)}")
    specs = dataset.splits[split]
    places = []
    folder = dataset.folder or name
    if data_dir():
        places.append(os.path.join(data_dir(), folder))
    places.append(os.path.join(cache_dir(), folder))
    for place in places:
        paths = [os.path.join(place, s.filename) for s in specs]
        if all(os.path.isfile(p) for p in paths):
            return paths
    if download:
        target_dir = places[-1]
        try:
            for spec in specs:
                target = os.path.join(target_dir, spec.filename)
                if not os.path.isfile(target):
                    _download(spec, target)
            return [os.path.join(target_dir, s.filename) for s in specs]
        except UserError:
            raise
        except Exception as exc:  # network errors come in many types
            reason = f"download failed: {type(exc).__name__}: {exc}".splitlines()[0]
    else:
        reason = "downloads disabled"
    files = ", ".join(s.filename for s in specs)
    looked = ", ".join(places)
    raise UserError(
        f"dataset {name} split {split} needs {files}; not found in {looked} and {reason}. "
        f"Set KNLP_DATA_DIR to a folder holding {folder}/")


def split_path(name, split, download=True):
    """The single file of a one-file split (most datasets)."""
    paths = split_paths(name, split, download=download)
    if len(paths) != 1:
        raise UserError(f"dataset {name} split {split} has {len(paths)} files; use split_paths")
    return paths[0]


def describe(name):
    """One mapping per split: files, where each was found (or None), for `knlp datasets info`."""
    dataset = get_dataset(name)
    info = {"name": name, "task": dataset.task, "format": dataset.format,
            "description": dataset.description, "splits": {}}
    for split, specs in dataset.splits.items():
        try:
            found = split_paths(name, split, download=False)
        except UserError:
            found = None
        info["splits"][split] = {"files": [s.filename for s in specs], "found": found}
    return info


def fetch(name):
    """Makes every split of `name` available locally; returns {split: paths}."""
    return {split: split_paths(name, split) for split in get_dataset(name).splits}



def split_source(data_cfg, split):
    """What a data config names for its `train` or `validation` split: `("file", path)` for an
    explicit file, `("registry", split_name)` for a split of `data.dataset`, or None when it
    names nothing (a UserError for `train`, which every run needs)."""
    explicit = data_cfg.train_file if split == "train" else data_cfg.validation_file
    if explicit:
        return "file", explicit
    if not data_cfg.dataset:
        if split == "train":
            raise UserError("the config names no training data: set data.dataset or data.train_file")
        return None
    registry_split = data_cfg.train_split if split == "train" else data_cfg.validation_split
    return None if registry_split is None else ("registry", registry_split)
