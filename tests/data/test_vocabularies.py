"""`knlp vocab`: a vocabulary learned from text files, and runs that use it as is."""

import json
import os

import pytest

from keras_nlp_app.cli import main
from keras_nlp_app.config import load_config
from keras_nlp_app.data import readers
from keras_nlp_app.errors import ConfigError
from keras_nlp_app.tasks import get_task

TEXT = "the cat sat on the mat\nthe dog sat on the log\na cat and a dog\n" * 30


def _vocab(tmp_path, *extra):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(TEXT)
    output = tmp_path / "vocab"
    return main(["vocab", str(corpus), "--output", str(output), *extra]), output


def test_vocab_writes_a_tokenizer_folder_that_a_run_uses_as_is(tmp_path, capsys):
    code, output = _vocab(tmp_path, "--kind", "wordpiece", "--vocab-size", "60")
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["kind"] == "wordpiece" and summary["texts"] == 90
    assert sorted(os.listdir(output)) == ["tokenizer.json", "vocab.txt"]
    cfg = load_config([], ["tokenizer.kind=wordpiece", f"tokenizer.vocabulary={output}"])
    examples = readers.Examples(["a mat", "a log"], ["0", "1"], [2, 3], readers.ReadReport("x"))
    tokenizer, _ = get_task("classification").prepare_assets(cfg, examples, str(tmp_path / "assets"))
    with open(output / "vocab.txt", encoding="utf-8") as f:
        assert tokenizer.vocabulary == f.read().split("\n")[:-1]
    with open(tmp_path / "assets" / "vocab.txt", encoding="utf-8") as f:
        assert f.read().split("\n")[:-1] == tokenizer.vocabulary  # the run keeps its own copy


def test_sentencepiece_bpe_from_a_jsonl_field(tmp_path, capsys):
    corpus = tmp_path / "reviews.jsonl"
    corpus.write_text("".join(json.dumps({"review": line}) + "\n" for line in TEXT.splitlines()))
    code = main(["vocab", str(corpus), "--output", str(tmp_path / "spm"), "--kind", "sentencepiece",
                 "--model-type", "bpe", "--vocab-size", "30", "--text-field", "review"])
    assert code == 0 and json.loads(capsys.readouterr().out)["kind"] == "sentencepiece"
    assert os.path.exists(tmp_path / "spm" / "spm.model")


def test_bad_vocabularies_are_clear_errors(tmp_path, capsys):
    code, output = _vocab(tmp_path, "--kind", "word", "--vocab-size", "40")
    assert code == 0
    capsys.readouterr()
    again, _ = _vocab(tmp_path, "--kind", "word")
    assert again == 2 and "already holds a tokenizer" in capsys.readouterr().err
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    assert main(["vocab", str(empty), "--output", str(tmp_path / "none")]) == 2
    assert not os.path.exists(tmp_path / "none" / "tokenizer.json")
    examples = readers.Examples(["a mat"], ["0"], [2], readers.ReadReport("x"))
    for overrides, message in (
            (["tokenizer.kind=wordpiece", f"tokenizer.vocabulary={output}"], "holds a word tokenizer"),
            ([f"tokenizer.vocabulary={tmp_path / 'missing'}"], "holds no tokenizer")):
        with pytest.raises(ConfigError, match=message):
            get_task("classification").prepare_assets(load_config([], overrides), examples,
                                                      str(tmp_path / "assets2"))
