"""The bad-input corpus: every file under tests/reliability/<format>/ is given to the verb that
reads that format (COMMANDS), in process. Each case's `expect.json` entry lists the exit codes a
user may see. A refused case (exit 2) prints one line on stderr that names the case file (or the
file `names` gives), no traceback, and leaves the output path the verb was given uncreated."""

import json
import os

import pytest

from keras_nlp_app.cli import main

HERE = os.path.relpath(os.path.dirname(os.path.abspath(__file__)))
TRAIN = ["train", "{recipe}", "--run-dir", "{out}", "--set", "data.dataset=null",
         "--set", "data.validation_split=null", "--set", "data.train_file={data}"]
COMMANDS = {
    "arpa": ["ngram", "from-arpa", "{data}", "{out}"],
    "config": ["train", "{data}", "--run-dir", "{out}"],
    "conll": TRAIN + ["--set", "data.format=conll"],
    "entities": TRAIN + ["--set", "data.format=jsonl"],
    "parallel": TRAIN + ["--set", "data.format=parallel"],
    "dialog": TRAIN + ["--set", "data.format=dialog"],
    "squad": TRAIN,
    "lm": TRAIN,
    "rules": ["chat", "{data}"],
    "tokenizer": ["train", "configs/sst2.yaml", "--run-dir", "{out}", "--set", "data.dataset=null",
                  "--set", "data.validation_split=null", "--set",
                  f"data.train_file={HERE}/config/tiny_data.tsv", "--set", "train.monitor=loss",
                  "--set", "tokenizer.vocabulary={data}"],
}
RECIPES = {"conll": "configs/conll2003.yaml", "entities": "configs/conll2003.yaml",
           "parallel": "configs/multi30k_en_de.yaml", "dialog": "configs/dailydialog.yaml",
           "squad": "configs/squad.yaml", "lm": "configs/ptb_lstm_small.yaml"}


def _cases():
    for fmt in sorted(COMMANDS):
        with open(os.path.join(HERE, fmt, "expect.json"), encoding="utf-8") as f:
            for name, expected in sorted(json.load(f).items()):
                yield pytest.param(fmt, name, expected, id=f"{fmt}/{name}")


def test_every_case_file_has_an_expectation():
    for fmt in COMMANDS:
        folder = os.path.join(HERE, fmt)
        with open(os.path.join(folder, "expect.json"), encoding="utf-8") as f:
            expected = json.load(f)
        described = {name for name, entry in expected.items()}
        described |= {os.path.basename(part) for entry in expected.values()
                      if isinstance(entry, dict) for part in entry.get("data", "").split(",")}
        present = set(os.listdir(folder)) - {"expect.json", "tiny_data.tsv"}
        assert present <= described, f"{fmt}: files without an expectation: {present - described}"


@pytest.mark.parametrize("fmt, name, expected", list(_cases()))
def test_bad_input_is_refused_cleanly(fmt, name, expected, tmp_path, capsys):
    entry = expected if isinstance(expected, dict) else {"exit": expected}
    folder = os.path.join(HERE, fmt)
    data = entry.get("data", "{dir}/" + name).format(dir=folder)
    out = str(tmp_path / "output")
    argv = [a.format(recipe=RECIPES.get(fmt, ""), out=out, data=data) for a in COMMANDS[fmt]]
    code = main(argv)
    stderr = capsys.readouterr().err
    assert code in entry["exit"], f"exit {code}; stderr: {stderr}"
    if code == 2:
        lines = [line for line in stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("knlp: error: "), stderr
        assert entry.get("names", name) in lines[0], lines[0]
        assert "Traceback" not in stderr
        assert not os.path.exists(out) and not os.path.exists(out + ".npz"), os.listdir(tmp_path)


def test_awkward_but_valid_conll_reads_like_the_plain_file(tmp_path):
    from keras_nlp_app.data.readers import read_conll

    plain = "EU NNP B-NP B-ORG\nrejects VBZ B-VP O\n\nPeter NNP B-NP B-PER\n"
    variants = {"crlf.conll": plain.replace("\n", "\r\n").encode(),
                "bom.conll": b"\xef\xbb\xbf" + plain.encode(),
                "no_final_newline.conll": plain.rstrip("\n").encode()}
    expected = read_conll(_write(tmp_path / "plain.conll", plain.encode()))
    for name, raw in variants.items():
        got = read_conll(_write(tmp_path / name, raw))
        assert (got.texts, got.labels) == (expected.texts, expected.labels), name
    long = "".join(f"w{i} NN O\n" for i in range(10_000))
    got = read_conll(_write(tmp_path / "long.conll", long.encode()))
    assert len(got.texts) == 1 and len(got.texts[0]) == 10_000


def _write(path, raw):
    path.write_bytes(raw)
    return str(path)
