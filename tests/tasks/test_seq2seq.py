"""Sequence to sequence: pairs readers, metrics, a reverse task learned, export, CLI errors."""

import json
import os
import random
import subprocess
import sys

import pytest

from keras_nlp_app import metrics
from keras_nlp_app.config import load_config
from keras_nlp_app.data import readers
from keras_nlp_app.errors import DataError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WORDS = "red green blue cat dog sun moon tree".split()


def write_lines(path, lines):
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return str(path)


def reverse_task(folder, name, count, seed):
    rng = random.Random(seed)
    sources = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 5))) for _ in range(count)]
    targets = [" ".join(reversed(s.split())) for s in sources]
    return (write_lines(folder / f"{name}.src", sources), write_lines(folder / f"{name}.tgt", targets))


def test_parallel_files_of_different_lengths_name_both_files_and_counts(tmp_path):
    source = write_lines(tmp_path / "a.en", ["one", "two", "three"])
    target = write_lines(tmp_path / "a.de", ["eins", "zwei"])
    with pytest.raises(DataError) as error:
        readers.read_parallel(source, target)
    message = str(error.value)
    assert source in message and target in message and "3 lines" in message and "has 2" in message


def test_an_empty_line_on_either_side_is_refused_or_skipped(tmp_path):
    source = write_lines(tmp_path / "a.en", ["one", "", "three"])
    target = write_lines(tmp_path / "a.de", ["eins", "zwei", "drei"])
    with pytest.raises(DataError, match=r"a.en:2: empty source line"):
        readers.read_parallel(source, target)
    pairs = readers.read_parallel(source, target, on_bad_line="skip")
    assert pairs.texts == ["one", "three"] and pairs.labels == ["eins", "drei"]


def test_dialogues_become_one_example_per_reply_with_speaker_markers(tmp_path):
    path = write_lines(tmp_path / "d.txt", ["Hi . __eou__ Hello ! __eou__ How are you ? __eou__"])
    pairs = readers.read_dialogues(path, context_turns=2)
    assert pairs.labels == ["Hello !", "How are you ?"]
    assert pairs.texts == ["A: Hi .", "B: Hi .\nA: Hello !"]


def test_bleu_and_chrf_equal_sacrebleu_on_a_known_pair():
    import sacrebleu

    hypotheses = ["the cat sat on the mat", "a dog barked loudly"]
    references = ["the cat sat on a mat", "the dog barked loudly"]
    report = metrics.bleu_report(hypotheses, references)
    assert report["bleu"] == round(sacrebleu.corpus_bleu(hypotheses, [references]).score, 2)
    assert report["chrf"] == round(sacrebleu.corpus_chrf(hypotheses, [references]).score, 2)
    assert report["bleu_signature"].startswith("nrefs:1|case:mixed|eff:no|tok:13a")
    assert metrics.bleu_report(references, references)["bleu"] == 100.0
    assert metrics.rouge_report(references, references)["rougeL"] == 100.0
    assert metrics.distinct_n(["a a b", "a b"], 1) == round(2 / 5, 4)


@pytest.fixture(scope="module")
def reverse_run(tmp_path_factory):
    """A tiny Transformer trained to reverse word sequences (one fit)."""
    from keras_nlp_app.training.train import train

    folder = tmp_path_factory.mktemp("s2s")
    train_pair = ",".join(reverse_task(folder, "train", 3000, 1))
    valid_pair = ",".join(reverse_task(folder, "valid", 60, 2))
    cfg = load_config([], [
        "task=seq2seq", "data.dataset=null", f"data.train_file={train_pair}",
        f"data.validation_file={valid_pair}", "tokenizer.kind=sentencepiece",
        "tokenizer.vocab_size=40", "tokenizer.sequence_length=16", "tokenizer.target_length=16",
        "model.name=transformer_seq2seq",
        "model.params={num_layers: 2, num_heads: 2, hidden_dim: 64, dropout: 0.0}",
        "train.epochs=10", "train.batch_size=32", "train.learning_rate=0.003",
        "train.warmup_steps=100", "train.decay=noam", "train.label_smoothing=0.1",
        "train.monitor=val_bleu", "train.verbose=0", "train.eval_examples=30",
        "train.average_checkpoints=3"])
    return train(cfg, str(folder / "run")), valid_pair


@pytest.mark.slow  # shares the reverse_run fixture: 2 minutes on 2 cores
def test_a_transformer_learns_to_reverse_sequences(reverse_run):
    run, _ = reverse_run
    with open(os.path.join(run, "metrics.json")) as f:
        result = json.load(f)
    assert result["bleu"] > 90 and result["bleu_greedy"] > 90
    assert 1.0 <= result["perplexity"] < 1.5  # the reversal is certain once learned
    assert result["beam_size"] == 4 and "rougeL" in result
    with open(os.path.join(run, "checkpoints", "averaged.json")) as f:
        assert json.load(f)["epochs_averaged"] == 3
    logs = os.path.join(run, "logs", "validation")
    assert any(name.startswith("events") for name in os.listdir(logs))


@pytest.mark.slow  # over 20 s on 2 cores
def test_the_exported_model_translates_in_a_process_without_this_package(reverse_run, tmp_path):
    from keras_nlp_app.export.saved_model import export_run

    run, _ = reverse_run
    exported = export_run(run, str(tmp_path / "reverse"))
    script = f"""
import json, sys
import tensorflow as tf, tensorflow_text
m = tf.saved_model.load({exported!r})
texts = tf.constant(["red cat sun", "dog moon tree blue"])
out = m.signatures["serving_default"](text=texts)
cold = m.signatures["generate"](text=texts, temperature=tf.constant(0.0), top_k=tf.constant(0),
                                top_p=tf.constant(1.0), seed=tf.constant(0))
assert not any(name.startswith(("keras_nlp_app", "keras_hub")) for name in sys.modules)
print(json.dumps([[t.decode() for t in o["output"].numpy()] for o in (out, cold)]))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}, cwd=str(tmp_path),
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    beam, greedy = json.loads(done.stdout.strip().splitlines()[-1])
    assert beam == greedy == ["sun cat red", "blue tree moon dog"]


@pytest.mark.slow  # shares the reverse_run fixture: 2 minutes on 2 cores
def test_sampling_is_seeded_and_temperature_moves_it_away_from_greedy(reverse_run):
    from keras_nlp_app.inference import load_generator

    run, _ = reverse_run
    generate = load_generator(run)
    sources = ["red cat sun", "dog moon tree blue"] * 4
    greedy = generate(sources, strategy="greedy")
    assert generate(sources, strategy="sample", temperature=0.0) == greedy
    assert generate(sources, strategy="top_k", top_k=1, seed=3) == greedy
    hot = dict(strategy="sample", temperature=5.0, seed=11)
    first = generate(sources, **hot)
    assert first == generate(sources, **hot)  # the same seed draws the same words
    assert first != greedy and first != generate(sources, **{**hot, "seed": 12})


@pytest.mark.slow  # over 20 s on 2 cores
def test_chat_keeps_the_history_and_samples_when_asked(reverse_run):
    from keras_nlp_app.data.readers import dialogue_source
    from keras_nlp_app.inference import chat, describe, load_generator

    run, _ = reverse_run
    generate = load_generator(run)
    replies = []
    chat(describe(run), ["red cat", "sun", "/reset", "sun"], context_turns=3,
         write=replies.append)
    first = generate([dialogue_source(["red cat"])], strategy="beam")[0]
    second = generate([dialogue_source(["red cat", first, "sun"])], strategy="beam")[0]
    alone = generate([dialogue_source(["sun"])], strategy="beam")[0]
    assert replies == [first, second, "(new conversation)", alone]
    replies = []
    chat(describe(run), ["red cat"], context_turns=3, write=replies.append, strategy="sample",
         temperature=0.0)
    assert replies == generate([dialogue_source(["red cat"])], strategy="greedy")


@pytest.mark.slow  # shares the reverse_run fixture: 2 minutes on 2 cores
def test_knlp_evaluate_scores_parallel_files(reverse_run, capsys):
    from keras_nlp_app.cli import main

    run, valid_pair = reverse_run
    assert main(["evaluate", run, "--data", valid_pair, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["examples"] == 60 and report["bleu"] > 90
    assert {"bleu", "chrf", "rouge1", "rouge2", "rougeL", "examples"} <= set(report)
    assert 1.0 <= report["perplexity"] < 1.5


@pytest.mark.slow  # shares the reverse_run fixture: 2 minutes on 2 cores
def test_n_best_lists_every_beam_best_first(reverse_run, capsys):
    from keras_nlp_app.cli import main

    run, _ = reverse_run
    assert main(["predict", run, "red cat sun", "--n-best", "--json"]) == 0
    found = json.loads(capsys.readouterr().out)["predictions"][0]["n_best"]
    assert len(found) == 4 and found[0][0] == "sun cat red"
    assert [score for _, score in found] == sorted((score for _, score in found), reverse=True)


def test_mismatched_parallel_files_exit_2_in_one_line(tmp_path):
    source = write_lines(tmp_path / "s.txt", ["a", "b"])
    target = write_lines(tmp_path / "t.txt", ["a"])
    done = subprocess.run(
        [sys.executable, "-m", "keras_nlp_app", "train", "configs/multi30k_en_de.yaml", "--set",
         "data.dataset=null", "--set", f"data.train_file={source},{target}", "--run-dir",
         str(tmp_path / "run")], capture_output=True, text=True, cwd=ROOT, timeout=120,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert done.returncode == 2
    assert "has 2 lines but" in done.stderr and len(done.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_the_attentional_lstm_baseline_learns_to_reverse(tmp_path):
    from keras_nlp_app.training.train import train

    train_pair = ",".join(reverse_task(tmp_path, "train", 2000, 3))
    valid_pair = ",".join(reverse_task(tmp_path, "valid", 40, 4))
    cfg = load_config(["configs/multi30k_en_de.yaml"], [
        "data.dataset=null", f"data.train_file={train_pair}", f"data.validation_file={valid_pair}",
        "tokenizer.vocab_size=40", "tokenizer.sequence_length=16", "tokenizer.target_length=16",
        "model.name=lstm_seq2seq",
        "model.params={units: 64, embedding_dim: 32, dropout: 0.0, attention: bahdanau}",
        "train.epochs=6", "train.batch_size=32", "train.learning_rate=0.005",
        "train.warmup_steps=100", "train.verbose=0",
        "train.eval_examples=20", "train.average_checkpoints=0", "train.early_stopping_patience=0"])
    run = train(cfg, str(tmp_path / "run"))
    with open(os.path.join(run, "metrics.json")) as f:
        assert json.load(f)["bleu"] > 90


@pytest.mark.parametrize("family,params", [
    ("transformer", {"positions": "learned", "share_embeddings": False}),
    pytest.param("transformer", {"positions": "sinusoidal", "share_embeddings": True},
                 marks=pytest.mark.slow),
    ("lstm", {"attention": "luong"}),
    pytest.param("lstm", {"attention": "bahdanau", "cell": "gru"}, marks=pytest.mark.slow),
])
def test_cached_decoding_equals_uncached_for_every_seq2seq_variant(family, params):
    import keras
    import numpy as np

    from keras_nlp_app import decoding
    from keras_nlp_app.models import build_model

    keras.utils.set_random_seed(5)
    if family == "transformer":
        model = build_model("transformer_seq2seq", source_vocab_size=30, target_vocab_size=30,
                            num_layers=2, num_heads=2, hidden_dim=16, max_length=128, **params)
    else:
        model = build_model("lstm_seq2seq", source_vocab_size=30, target_vocab_size=30,
                            units=16, embedding_dim=8, **params)
    model({"source": np.ones((1, 3), np.int32), "target": np.ones((1, 3), np.int32)})
    source = model.encode(np.array([[5, 6, 7, 3], [8, 3, 0, 0]], np.int32))
    outputs = [decoding.decode_ids(model, [[2], [2]], max_new_tokens=12, strategy=strategy,
                                   source=source, stop_ids=(3,), use_cache=cached).numpy()
               for strategy in ("greedy", "beam") for cached in (True, False)]
    assert np.array_equal(outputs[0], outputs[1]) and np.array_equal(outputs[2], outputs[3])


def test_separate_vocabularies_are_learned_saved_and_reloaded_per_side(tmp_path):
    from keras_nlp_app.tasks import get_task

    seq2seq = get_task("seq2seq")
    cfg = load_config(["configs/multi30k_en_de.yaml"], ["tokenizer.shared_vocabulary=false",
                                                        "tokenizer.vocab_size=30"])
    pairs = readers.Examples(["red cat", "blue dog"] * 50, ["rot Katze", "blau Hund"] * 50,
                             list(range(100)), readers.ReadReport("x"))
    (source, target), _ = seq2seq.prepare_assets(cfg, pairs, str(tmp_path))
    assert source is not target
    assert os.path.exists(tmp_path / "source" / "spm.model")
    assert os.path.exists(tmp_path / "target" / "spm.model")
    again = seq2seq.load_tokenizer(str(tmp_path))
    assert again[0].vocabulary == source.vocabulary and again[1].vocabulary == target.vocabulary
    assert "z" in target.vocabulary and "z" not in source.vocabulary  # from "Katze" only
