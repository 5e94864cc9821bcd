"""`knlp rescore`: n-best lists re-ranked with a language model, weights tuned on a dev list."""

import json

import pytest

from keras_nlp_app.cli import main

GOOD = ["the cat sat on the mat", "a dog ran in the park", "the bird sang a song"]
BAD = ["cat the on sat mat the", "dog a in ran park the", "bird the a sang song"]


def _lm(tmp_path):
    from keras_nlp_app.ngram.io import train_files

    text = tmp_path / "lm.txt"
    text.write_text("\n".join(GOOD * 20 + ["the cat ran in the park", "a bird sat on a mat"]) + "\n")
    train_files(str(text), str(tmp_path / "lm"), order=3, write_arpa_file=False,
                discount_fallback=[0.5, 1.0, 1.5])
    return str(tmp_path / "lm.npz")


def _nbest(path, with_references=True):
    """The decoder prefers the scrambled sentence by a little; the LM should overturn it."""
    with open(path, "w") as f:
        for i, (good, bad) in enumerate(zip(GOOD, BAD)):
            record = {"id": str(i), "hypotheses": [{"text": bad, "score": -1.0},
                                                   {"text": good, "score": -1.5}]}
            if with_references:
                record["references"] = [good]
            f.write(json.dumps(record) + "\n")
    return str(path)


def test_zero_weights_keep_the_decoders_one_best(tmp_path, capsys):
    from keras_nlp_app.rescoring import rescore

    report, picks = rescore(_nbest(tmp_path / "t.jsonl"), [_lm(tmp_path)], weights=[0.0, 0.0])
    assert [text for _, text, _ in picks] == BAD
    assert report["rescored"] == report["one_best"]


def test_weights_tuned_on_a_dev_list_raise_bleu_and_lower_wer(tmp_path, capsys):
    lm = _lm(tmp_path)
    nbest, dev = _nbest(tmp_path / "t.jsonl"), _nbest(tmp_path / "dev.jsonl")
    for metric in ("bleu", "wer"):
        assert main(["rescore", nbest, "--lm", lm, "--dev", dev, "--metric", metric,
                     "--output", str(tmp_path / "out.jsonl"), "--json"]) == 0
        report = json.loads(capsys.readouterr().out)
        better = (report["rescored"] > report["one_best"]) if metric == "bleu" else (
            report["rescored"] < report["one_best"])
        assert better and report["weights"][lm] > 0
    chosen = [json.loads(line)["text"] for line in open(tmp_path / "out.jsonl")]
    assert chosen == GOOD


@pytest.mark.parametrize("line, message", [
    ("not json", r"bad\.jsonl:2: not valid JSON"),
    ('{"id": 1, "hypotheses": []}', r"bad\.jsonl:2: .*non-empty \"hypotheses\""),
    ('{"hypotheses": [{"text": "a", "score": "high"}]}', r"bad\.jsonl:2: a hypothesis needs"),
])
def test_a_malformed_nbest_file_is_one_line_naming_file_and_line(tmp_path, capsys, line, message):
    import re

    path = tmp_path / "bad.jsonl"
    path.write_text('{"hypotheses": [{"text": "a b", "score": -1}]}\n' + line + "\n")
    assert main(["rescore", str(path), "--lm", _lm(tmp_path), "--weights", "0,0.5"]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and re.search(message, error)


def test_tuning_needs_references_and_weights_need_one_per_model(tmp_path, capsys):
    lm = _lm(tmp_path)
    nbest = _nbest(tmp_path / "t.jsonl")
    assert main(["rescore", nbest, "--lm", lm, "--dev", _nbest(tmp_path / "d.jsonl", False)]) == 2
    assert "has no references" in capsys.readouterr().err
    assert main(["rescore", nbest, "--lm", lm, "--weights", "0.1"]) == 2
    assert "needs 2 numbers" in capsys.readouterr().err
