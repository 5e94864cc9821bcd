"""The language-model task: streams, windows, exact perplexity, training, export, CLI."""

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from keras_nlp_app.config import load_config
from keras_nlp_app.data.corpus import Corpus
from keras_nlp_app.errors import ConfigError
from keras_nlp_app.tasks import get_task
from keras_nlp_app.tasks import language_model as lm
from keras_nlp_app.tasks import language_model_graphs as graphs
from keras_nlp_app.text import tokenizers
from keras_nlp_app.text.preprocessors import LMPreprocessor
from tests.test_decoding import BigramLM, log_softmax, random_table

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def write(path, text):
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return str(path)


def char_preprocessor(text):
    return LMPreprocessor(tokenizers.learn_tokenizer([text], kind="char"), sequence_length=8)


def test_word_level_streams_end_every_line_with_eos():
    tokenizer = tokenizers.learn_tokenizer(["a b", "c"], kind="whitespace", reserved=["<eos>"])
    preprocessor = LMPreprocessor(tokenizer, 4)
    stream = lm.token_stream(preprocessor, Corpus("x", ["a b\nc\n\na\n"]))
    words = [tokenizer.vocabulary[i] for i in stream]
    assert words == ["a", "b", "<eos>", "c", "<eos>", "<eos>", "a", "<eos>"]
    # the scoring side tokenizes a text the same way: one <eos> per line
    ids = preprocessor.ragged_ids(tf.constant(["a b\nc\n"])).numpy()[0].tolist()
    assert ids == stream[:5].tolist()


def test_subword_streams_end_lines_with_eos_and_detokenize_to_words():
    texts = ["the cat sat on the mat", "the cats sat"] * 20
    tokenizer = tokenizers.learn_tokenizer(texts, kind="wordpiece", vocab_size=60,
                                           reserved=["<eos>"])
    preprocessor = LMPreprocessor(tokenizer, 8)
    stream = lm.token_stream(preprocessor, Corpus("x", ["the cats sat\nthe mat\n"]))
    assert (stream == preprocessor.eos_id).sum() == 2 and stream[-1] == preprocessor.eos_id
    text = preprocessor.detokenize(stream[None]).numpy()[0].decode()
    assert text == "the cats sat\nthe mat\n"


def test_a_sentencepiece_lm_learns_its_vocabulary_from_the_lines_of_a_one_file_corpus(tmp_path):
    text = "".join(f"der hund {i} spielt mit dem ball im garten\n" for i in range(600))
    assert len(text) > 4192  # one document longer than SentencePiece's longest sentence
    cfg = load_config([], ["task=lm", "tokenizer.kind=sentencepiece", "tokenizer.vocab_size=100"])
    tokenizer, _ = get_task("lm").prepare_assets(cfg, Corpus("t.txt", [text]), str(tmp_path))
    ids = tokenizer(tf.constant(["der hund spielt"]))
    assert tokenizer.detokenize(ids).numpy()[0] == b"der hund spielt"
    assert tokenizer.vocabulary_size > len(set(text))  # pieces beyond the characters


def test_stop_strings_cut_the_continuation_before_the_first_match():
    text = "To be, or not\nto be"
    preprocessor = char_preprocessor(text)
    ids = preprocessor.prompt_ids(tf.constant(["To", "To"])).to_tensor()
    continuation = preprocessor.tokenizer(tf.constant([" be, or not\nto be", " be"])).to_tensor()
    tokens = tf.concat([ids, continuation], axis=1)
    lengths = tf.constant([3, 3])
    plain = graphs.generated_text(preprocessor, tokens, lengths).numpy().tolist()
    cut = graphs.generated_text(preprocessor, tokens, lengths, stop=("\n", ",")).numpy().tolist()
    assert plain == [b" be, or not\nto be", b" be"]
    assert cut == [b" be", b" be"]


def test_char_and_byte_streams_keep_the_text_exactly():
    text = "To be,\nor not — to be.\n"
    preprocessor = char_preprocessor(text)
    stream = lm.token_stream(preprocessor, Corpus("x", [text]))
    assert preprocessor.detokenize(stream[None]).numpy()[0].decode() == text
    byte = LMPreprocessor(tokenizers.ByteTokenizer(), 8)
    stream = lm.token_stream(byte, Corpus("x", [text]))
    assert len(stream) == len(text.encode())
    assert byte.detokenize(stream[None]).numpy()[0].decode() == text


def test_validation_windows_cover_the_stream_in_order_and_training_windows_shuffle():
    from keras_nlp_app.data.pipelines import lm_stream_batches, lm_windows

    stream = np.arange(2, 203, dtype=np.int32)  # 201 tokens → 200 predictions
    data, steps = lm_windows(stream, 2, 10, training=False)
    batches = list(data.as_numpy_iterator())
    assert steps == len(batches) == 10
    inputs = np.concatenate([x for x, _ in batches]).ravel()
    targets = np.concatenate([y for _, y in batches]).ravel()
    assert np.array_equal(inputs, stream[:200]) and np.array_equal(targets, stream[1:201])
    train, _ = lm_windows(stream, 2, 10, training=True, seed=1)
    x, y = next(iter(train))
    assert np.array_equal(x.numpy()[:, 1:], y.numpy()[:, :-1])  # targets are inputs shifted
    # truncated BPTT: batch i + 1 continues every row of batch i
    data, steps = lm_stream_batches(stream, 4, 5)
    (x0, y0), (x1, _) = list(data.take(2).as_numpy_iterator())
    assert steps == 10 and np.array_equal(x1[:, 0], y0[:, -1])
    assert np.array_equal(x0[1], stream[50:55])


def test_perplexity_is_total_nll_over_total_tokens_by_hand():
    table = random_table(7, 3)
    model = BigramLM(table)
    model.context_length = 4  # windows restart the context; a bigram model cannot tell
    stream = np.random.default_rng(0).integers(2, 7, size=23).astype(np.int32)
    report = graphs.evaluate_stream(model, stream, batch_windows=2)
    log_probs = log_softmax(table)
    nll = -sum(log_probs[a, b] for a, b in zip(stream[:-1], stream[1:]))
    assert report["tokens"] == 22
    assert report["loss"] == pytest.approx(nll / 22, abs=1e-4)
    assert report["perplexity"] == pytest.approx(math.exp(nll / 22), rel=1e-3)


def test_scores_start_from_the_line_start_token_by_hand():
    text = "abcab\n"
    preprocessor = char_preprocessor(text)
    table = random_table(preprocessor.vocabulary_size, 4)
    model = BigramLM(table)
    outputs = graphs.score_texts(model, preprocessor, tf.constant(["abc", "ba"]))
    log_probs = log_softmax(table)
    ids = [preprocessor.tokenizer.vocabulary.index(c) for c in "abc"]
    expected = sum(log_probs[a, b] for a, b in zip([preprocessor.bos_id] + ids, ids))
    assert outputs["num_tokens"].numpy().tolist() == [3, 2]
    assert outputs["log_prob"].numpy()[0] == pytest.approx(expected, abs=1e-4)


@pytest.mark.parametrize("context_length", [None, 4])
def test_empty_texts_score_zero_beside_others(context_length):
    preprocessor = char_preprocessor("abcab\n")
    model = BigramLM(random_table(preprocessor.vocabulary_size, 4))
    model.context_length = context_length
    alone = graphs.score_texts(model, preprocessor, tf.constant(["abc"]))
    outputs = graphs.score_texts(model, preprocessor, tf.constant(["", "abc", ""]))
    assert outputs["num_tokens"].numpy().tolist() == [0, 3, 0]
    assert outputs["log_prob"].numpy()[[0, 2]].tolist() == [0.0, 0.0]
    assert outputs["log_prob"].numpy()[1] == pytest.approx(alone["log_prob"].numpy()[0], abs=1e-5)
    only_empty = graphs.score_texts(model, preprocessor, tf.constant([""]))
    assert only_empty["log_prob"].numpy().tolist() == [0.0]


def test_holdout_is_the_last_fraction_of_the_text(tmp_path):
    path = write(tmp_path / "t.txt", "0123456789" * 10)
    cfg = load_config([], ["task=lm", "data.dataset=null", f"data.train_file={path}",
                           "data.holdout_fraction=0.1"])
    train, validation = get_task("lm").load_splits(cfg.data, 0)
    assert train.documents == ["0123456789" * 9] and validation.documents == ["0123456789"]


def test_an_lm_over_a_parallel_dataset_reads_the_side_named_by_text_field(tmp_path, monkeypatch):
    monkeypatch.setenv("KNLP_DATA_DIR", str(tmp_path))
    (tmp_path / "multi30k").mkdir()
    for split in ("train", "val"):
        write(tmp_path / "multi30k" / f"{split}.en", f"an english {split} line\n")
        write(tmp_path / "multi30k" / f"{split}.de", f"eine deutsche {split} zeile\n")
    german = load_config([], ["task=lm", "data.dataset=multi30k", "data.text_field=de"])
    train, validation = get_task("lm").load_splits(german.data, 0)
    assert train.documents == ["eine deutsche train zeile\n"]
    assert validation.documents == ["eine deutsche val zeile\n"]
    unnamed = load_config([], ["task=lm", "data.dataset=multi30k"])
    with pytest.raises(ConfigError, match=r"parallel; name the side to model \(en, de\)"):
        get_task("lm").load_splits(unnamed.data, 0)


PATTERN = "the quick brown fox jumps over the lazy dog.\n"


@pytest.fixture(scope="module")
def trained_lm(tmp_path_factory):
    """One tiny character-level Transformer LM trained on a repeated sentence (one fit)."""
    from keras_nlp_app.training.train import train

    folder = tmp_path_factory.mktemp("lm")
    write(folder / "train.txt", PATTERN * 300)
    write(folder / "valid.txt", PATTERN * 20)
    cfg = load_config(["configs/shakespeare_char.yaml"], [
        "data.dataset=null", f"data.train_file={folder / 'train.txt'}",
        f"data.validation_file={folder / 'valid.txt'}", "data.holdout_fraction=0.0",
        "tokenizer.sequence_length=32",
        "model.params={num_layers: 1, num_heads: 2, hidden_dim: 32}",
        "train.epochs=2", "train.steps_per_epoch=60", "train.steps_per_execution=20",
        "train.batch_size=16", "train.learning_rate=0.01", "train.warmup_steps=10",
        "train.verbose=0"])
    return train(cfg, str(folder / "run"))


def test_a_transformer_lm_learns_an_easy_text_and_logs_samples(trained_lm):
    with open(os.path.join(trained_lm, "metrics.json")) as f:
        metrics = json.load(f)
    assert metrics["perplexity"] < 1.5  # uniform over ~30 characters would be ~30
    samples = os.path.join(trained_lm, "logs", "samples")
    assert os.path.isdir(samples) and os.listdir(samples)
    from keras_nlp_app.inference import generate

    text = generate(trained_lm, ["the quick "], max_new_tokens=20, strategy="greedy")[0]
    assert text.startswith("brown fox jumps")


@pytest.mark.slow  # over 20 s on 2 cores
def test_the_exported_signatures_run_without_this_package(trained_lm, tmp_path):
    from keras_nlp_app.export.saved_model import export_run

    exported = export_run(trained_lm, str(tmp_path / "lm"))
    script = f"""
import sys, json
import tensorflow as tf, tensorflow_text
m = tf.saved_model.load({exported!r})
out = m.signatures["generate"](prompt=tf.constant(["the quick ", "over the "]),
    max_new_tokens=tf.constant(12), temperature=tf.constant(0.0), top_k=tf.constant(0),
    top_p=tf.constant(1.0), seed=tf.constant(0))
scores = m.signatures["serving_default"](text=tf.constant(["the lazy dog.", "zzqx"]))
beam = m.signatures["beam_search"](prompt=tf.constant(["the lazy "]), max_new_tokens=tf.constant(4))
assert not any(name.startswith(("keras_nlp_app", "keras_hub")) for name in sys.modules)
print(json.dumps({{"text": [t.decode() for t in out["text"].numpy()],
                   "log_prob": scores["log_prob"].numpy().tolist(),
                   "num_tokens": scores["num_tokens"].numpy().tolist(),
                   "beam": beam["continuation"].numpy()[0].decode()}}))
"""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, cwd=str(tmp_path), timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["text"][0].startswith("the quick brown fox")
    assert result["text"][1].startswith("over the lazy dog")
    assert result["num_tokens"] == [13, 4]
    assert result["log_prob"][0] > result["log_prob"][1]  # the seen sentence is far likelier
    assert result["beam"] == "dog."


def test_knlp_evaluate_and_generate_on_an_lm(trained_lm):
    from keras_nlp_app.cli import main

    assert main(["evaluate", trained_lm, "--json"]) == 0
    assert main(["generate", trained_lm, "--prompt", "the lazy", "--strategy", "beam",
                 "--max-new-tokens", "5", "--stop", "."]) == 0


def run_cli(*args, data_dir=None):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([sys.executable, "-m", "keras_nlp_app", *args], capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=300)


@pytest.mark.parametrize("content,message", [
    (b"", "holds no text"),
    (b"good text\n\xff\xfe bad bytes\n", "train.txt:2: not valid UTF-8"),
])
def test_bad_lm_training_text_is_refused_in_one_line(tmp_path, content, message):
    path = tmp_path / "train.txt"
    path.write_bytes(content)
    done = run_cli("train", "configs/shakespeare_char.yaml", "--set", "data.dataset=null",
                   "--set", f"data.train_file={path}", "--run-dir", str(tmp_path / "run"))
    assert done.returncode == 2
    assert message in done.stderr and str(path) in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.slow  # over 20 s on 2 cores
def test_a_word_level_lstm_learns_with_state_carried_across_batches(tmp_path):
    from keras_nlp_app.export.saved_model import export_run
    from keras_nlp_app.inference import evaluate, generate
    from keras_nlp_app.training.train import train

    sentence = "we sell shares of the company at a profit\n"
    write(tmp_path / "train.txt", sentence * 200)
    write(tmp_path / "valid.txt", sentence * 20)
    cfg = load_config(["configs/ptb_lstm_small.yaml"], [
        "data.dataset=null", f"data.train_file={tmp_path / 'train.txt'}",
        f"data.validation_file={tmp_path / 'valid.txt'}", "tokenizer.sequence_length=5",
        "model.params={num_layers: 1, units: 24, tie_embeddings: true}", "train.epochs=3",
        "train.batch_size=4", "train.learning_rate=5.0", "train.verbose=0"])
    run = train(cfg, str(tmp_path / "run"))
    report = evaluate(run)
    assert report["perplexity"] < 1.5 and report["context"] == "stream"
    assert generate(run, ["we sell"], max_new_tokens=4, strategy="greedy") == [
        "shares of the company"]
    exported = export_run(run, str(tmp_path / "saved"))  # checks scores and greedy text match
    again = evaluate(exported, data=str(tmp_path / "valid.txt"))
    assert again["perplexity"] < 1.5 and again["source"] == "saved_model"


def test_records_corpus_starts_each_text_with_its_control_token(tmp_path):
    from keras_nlp_app.config import DataConfig
    from keras_nlp_app.errors import DataError
    from keras_nlp_app.tasks.language_model import corpus_conditions, records_corpus

    path = tmp_path / "reviews.tsv"
    path.write_text("sentence\tlabel\na  fine film\t1\nawful\t0\n")
    data = DataConfig(dataset=None, condition_field="label",
                      condition_names={"0": "negative", "1": "positive"})
    corpus = records_corpus(str(path), data)
    assert corpus.documents == ["__positive__ a fine film\n__negative__ awful\n"]
    assert corpus_conditions(corpus) == ["negative", "positive"]
    data.condition_names = {"0": "Not good"}
    with pytest.raises(DataError, match=r"reviews.tsv:3.*lower-case letters"):
        records_corpus(str(path), data)


def test_a_jsonl_file_is_read_as_one_line_per_record_text(tmp_path):
    """Unlabeled reviews in JSONL (imdb_unsup's layout) are text to model, not JSON syntax; a
    record without the text field names its line."""
    from keras_nlp_app.errors import DataError

    path = tmp_path / "reviews.jsonl"
    path.write_text(json.dumps({"id": 0, "text": "A fine\nfilm ."}) + "\n"
                    + json.dumps({"id": 1, "text": "Awful  acting ."}) + "\n")
    cfg = load_config([], ["task=lm", "data.dataset=null", f"data.train_file={path}",
                           "data.text_field=text"])
    task = get_task("lm")
    corpus = task.read_file(str(path), cfg.data)
    assert corpus.documents == ["A fine film .\nAwful acting .\n"]
    plain = tmp_path / "reviews.txt"
    plain.write_text('{"text": "kept as written"}\n')
    assert task.read_file(str(plain), cfg.data).documents == ['{"text": "kept as written"}\n']
    path.write_text(json.dumps({"id": 2, "body": "no text field"}) + "\n")
    with pytest.raises(DataError, match=r"reviews.jsonl:1"):
        task.read_file(str(path), cfg.data)


@pytest.mark.slow  # about 35 s alone: a small LM trained for 6 epochs, then exported
def test_a_conditioned_lm_generates_under_the_asked_condition(easy_files, tmp_path):
    """Sentiment-controlled generation: each labelled text starts with its control token; the
    run, the CLI's --condition and the export's generate_with_condition all steer by it."""
    import tensorflow as tf

    from keras_nlp_app.config import load_config
    from keras_nlp_app.errors import UserError
    from keras_nlp_app.export.saved_model import export_run
    from keras_nlp_app.inference import describe, generate
    from keras_nlp_app.training.train import train
    from tests.conftest import NEGATIVE, POSITIVE

    overrides = ["data.dataset=null", f"data.train_file={easy_files[0]}",
                 f"data.validation_file={easy_files[1]}", "data.condition_field=label",
                 "data.condition_names={'0': negative, '1': positive}", "tokenizer.kind=word",
                 "tokenizer.sequence_length=16",
                 "model.params={num_layers: 1, num_heads: 2, hidden_dim: 32}", "train.epochs=12",
                 "train.batch_size=16", "train.warmup_steps=10", "train.learning_rate=0.003",
                 "train.jit_compile=off", "train.verbose=0"]
    run_dir = train(load_config(["configs/shakespeare_char.yaml"], overrides),
                    run_dir=str(tmp_path / "run"))
    target = describe(run_dir)
    assert target.space == ["negative", "positive"]
    for condition, wanted, unwanted in (("positive", POSITIVE, NEGATIVE),
                                        ("negative", NEGATIVE, POSITIVE)):
        texts = generate(target, [""] * 20, condition=condition, max_new_tokens=10,
                         strategy="sample", temperature=0.7, seed=3)
        hits = sum(any(w in t.split() for w in wanted) for t in texts)
        misses = sum(any(w in t.split() for w in unwanted) for t in texts)
        assert hits >= 15 and misses <= 3, (condition, texts)
    with pytest.raises(UserError, match="knows the conditions negative, positive"):
        generate(target, [""], condition="neutral")
    version = export_run(run_dir, str(tmp_path / "export"))
    outputs = tf.saved_model.load(version).signatures["generate_with_condition"](
        condition=tf.constant(["positive"] * 8), prompt=tf.constant([""] * 8),
        max_new_tokens=tf.constant(10), temperature=tf.constant(0.7), top_k=tf.constant(0),
        top_p=tf.constant(1.0), seed=tf.constant(5))
    texts = [t.decode() for t in outputs["text"].numpy()]
    assert sum(any(w in t.split() for w in POSITIVE) for t in texts) >= 6, texts
    assert not any("__" in t for t in texts)


def test_bits_per_character_is_the_total_loss_over_the_characters():
    from keras_nlp_app.data.corpus import Corpus
    from keras_nlp_app.tasks.language_model import per_character

    report = per_character({"tokens": 10, "loss": math.log(2) * 3, "perplexity": 8.0},
                           Corpus("x.txt", ["abcdefghij", "klmnopqrst"]))
    assert report["characters"] == 20 and report["bits_per_character"] == pytest.approx(1.5)
