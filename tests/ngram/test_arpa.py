import subprocess
import sys

import numpy as np
import pytest

from keras_nlp_app.errors import DataError, UserError
from keras_nlp_app.ngram.arpa import read_arpa, write_arpa
from keras_nlp_app.ngram.estimate import train_model
from tests.ngram.test_model import random_corpus


@pytest.fixture(scope="module")
def model():
    return train_model(random_corpus(400, 11), order=4)


def test_arpa_round_trip_scores_the_same(model, tmp_path):
    path = str(tmp_path / "m.arpa")
    write_arpa(model, path)
    loaded = read_arpa(path)
    probe = random_corpus(50, 12) + [["a", "unseen", "b"]]
    np.testing.assert_allclose(loaded.token_log10_probs(probe)[0], model.token_log10_probs(probe)[0],
                               atol=1e-6)
    text = open(path).read()
    assert text.startswith("\n\\data\\\nngram 1=") and text.rstrip().endswith("\\end\\")
    assert "-99\t<s>" in text


def ngram_words(model, order_index, key):
    """The words of the n-gram stored under `key`: its last word, after its context's words
    (the row `key // V` of the order below)."""
    if order_index == 0:
        return [model.vocabulary[key]]
    context, word = divmod(key, model.vocab_size)
    context_key = int(model.orders[order_index - 1].keys[context])
    return ngram_words(model, order_index - 1, context_key) + [model.vocabulary[word]]


def test_arpa_lines_equal_a_plain_line_by_line_writer(tmp_path):
    """The writer builds each n-gram's text from its context's and formats each distinct backoff
    once; its file must equal, byte for byte, one written line by line from every n-gram's words."""
    model = train_model(random_corpus(200, 13), order=3)
    model.orders[1].log10_backoff[[3, 5]] = -3.25e-05  # values that take an exponent
    model.orders[2].log10_prob[7] = -1.5e-06
    path = tmp_path / "m.arpa"
    write_arpa(model, str(path))
    expected = ["", "\\data\\"] + [f"ngram {i + 1}={len(o.keys)}" for i, o in enumerate(model.orders)]
    for i, order in enumerate(model.orders):
        expected += ["", f"\\{i + 1}-grams:"]
        for key, prob, backoff in zip(order.keys, order.log10_prob, order.log10_backoff):
            line = f"{prob:.7g}\t" + " ".join(ngram_words(model, i, int(key)))
            if i < model.order - 1 and backoff != 0:
                line += f"\t{backoff:.7g}"
            expected.append(line)
    assert path.read_text() == "\n".join(expected + ["", "\\end\\", ""])
    assert sum("e-0" in line for line in expected) == 3


def test_arpa_holds_only_backoff_models(tmp_path):
    with pytest.raises(UserError, match="only back-off models"):
        write_arpa(train_model(random_corpus(50, 1), order=2, smoothing="add_k"), str(tmp_path / "x.arpa"))


@pytest.mark.parametrize("corrupt,message", [
    (lambda t: t.replace("\\2-grams:", "\\2-gram:"), "expected the \\\\2-grams: section"),
    (lambda t: t.replace("ngram 2=", "ngram 2=x"), "bad header line"),
    (lambda t: t.replace("\\end\\", ""), "expected \\\\end\\\\"),
    (lambda t: t.replace("\t</s>\n", "\tnot_a_unigram_x\n", 1), "not among the unigrams|lack </s>"),
    (lambda t: t.replace("\n-", "\n", 1), "log10 probability must be <= 0"),
])
def test_malformed_arpa_is_an_error_naming_the_line(model, tmp_path, corrupt, message):
    good = tmp_path / "good.arpa"
    write_arpa(model, str(good))
    bad = tmp_path / "bad.arpa"
    bad.write_text(corrupt(good.read_text()))
    with pytest.raises(DataError, match=message) as error:
        read_arpa(str(bad))
    assert str(bad) in str(error.value)


def test_a_line_with_a_broken_number_names_its_line(model, tmp_path):
    good = tmp_path / "good.arpa"
    write_arpa(model, str(good))
    lines = good.read_text().split("\n")
    target = next(i for i, l in enumerate(lines) if l.count("\t") >= 1 and len(l.split("\t")[1].split()) == 3)
    lines[target] = "abc\t" + lines[target].split("\t", 1)[1]
    bad = tmp_path / "bad.arpa"
    bad.write_text("\n".join(lines))
    with pytest.raises(DataError, match=rf"bad.arpa:{target + 1}: not a number"):
        read_arpa(str(bad))


def test_kenlm_reads_our_arpa_and_agrees(model, tmp_path):
    kenlm = pytest.importorskip("kenlm")
    path = str(tmp_path / "m.arpa")
    write_arpa(model, path)
    theirs = kenlm.Model(path)
    probe = random_corpus(100, 13) + [["a", "unseen", "b"]]
    ours = [s["log10_prob"] for s in model.sentence_scores(probe)]
    np.testing.assert_allclose([theirs.score(" ".join(s), bos=True, eos=True) for s in probe], ours,
                               atol=1e-4)


def test_an_arpa_from_kenlm_lmplz_scores_the_same_here(tmp_path):
    import os
    import shutil

    folder = os.environ.get("KNLP_KENLM_BIN")
    lmplz = shutil.which("lmplz", path=folder) if folder else shutil.which("lmplz")
    query = shutil.which("query", path=os.path.dirname(lmplz)) if lmplz else None
    if not (lmplz and query):
        pytest.skip("KenLM's lmplz and query binaries are not installed (set KNLP_KENLM_BIN)")
    train, test = tmp_path / "train.txt", tmp_path / "test.txt"
    train.write_text("\n".join(" ".join(s) for s in random_corpus(400, 16)) + "\n")
    test.write_text("\n".join(" ".join(s) for s in random_corpus(60, 17) + [["a", "unseen"]]) + "\n")
    arpa = tmp_path / "kenlm.arpa"
    subprocess.run([lmplz, "-o", "3", "-S", "100M", "-T", str(tmp_path), "--text", str(train),
                    "--arpa", str(arpa)], check=True, capture_output=True)
    summary = subprocess.run([query, "-v", "summary", str(arpa)], stdin=open(test), check=True,
                             capture_output=True, text=True).stdout
    theirs = float(next(l for l in summary.splitlines() if l.startswith("Perplexity including OOVs")).split()[-1])
    from keras_nlp_app.ngram.io import read_sentences
    from keras_nlp_app.ngram.model import perplexity_report

    ours = perplexity_report(read_arpa(str(arpa)), read_sentences(str(test)))["perplexity"]
    assert ours == pytest.approx(theirs, rel=1e-6)
    ours_trained = perplexity_report(train_model(read_sentences(str(train)), order=3),
                                     read_sentences(str(test)))["perplexity"]
    assert ours_trained == pytest.approx(theirs, rel=1e-4)


def test_ngram_verbs_do_not_import_tensorflow(tmp_path):
    corpus = tmp_path / "train.txt"
    corpus.write_text("\n".join(" ".join(s) for s in random_corpus(400, 15)) + "\n")
    code = (
        "import sys, json; from keras_nlp_app.cli import main\n"
        f"assert main(['ngram', 'train', {str(corpus)!r}, '--order', '3', '--output', {str(tmp_path / 'lm')!r}, '--arpa']) == 0\n"
        f"assert main(['ngram', 'score', {str(tmp_path / 'lm')!r}, '--data', {str(corpus)!r}, '--json']) == 0\n"
        f"assert main(['ngram', 'generate', {str(tmp_path / 'lm.arpa')!r}, '--seed', '1']) == 0\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    score = [l for l in result.stdout.splitlines() if l.startswith('{"sentences"')][0]
    assert '"perplexity"' in score and '"oov": 0' in score
