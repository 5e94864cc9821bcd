"""Fine-tuning keras-hub presets: tiny random presets of the three tokenizer families
(WordPiece, byte-pair, SentencePiece) are saved, fine-tuned, exported, and reloaded in a process
that imports only TensorFlow and TensorFlow Text; LoRA and frozen backbones train only what they
should; layer-wise rates and gradual unfreezing hold lower layers back; bad presets exit 2."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from keras_nlp_app.cli import main
from keras_nlp_app.config import load_config
from keras_nlp_app.training.schedules import group_rates
from keras_nlp_app.training.train import train
from tests.tiny_presets import save_tiny_preset, save_transformers_bert

RELOAD = """
import json, sys
import tensorflow as tf, tensorflow_text  # noqa: F401
model = tf.saved_model.load(sys.argv[1])
texts = json.loads(sys.argv[2])
out = model.signatures["serving_default"](text=tf.constant(texts))
assert "keras_nlp_app" not in sys.modules and "keras_hub" not in sys.modules
print(json.dumps(out["probabilities"].numpy().tolist()))
"""


def overrides(train_file, dev_file, preset, **extra):
    values = {"data.dataset": "null", "data.train_file": train_file, "data.validation_file": dev_file,
              "model.name": "backbone_classifier", "model.backbone": preset,
              "model.params": "{pooling: mean, dropout: 0.0}", "tokenizer.sequence_length": 16,
              "train.epochs": 1, "train.batch_size": 32, "train.learning_rate": 0.003,
              "train.verbose": 0}
    values.update(extra)
    return [f"{k}={v}" for k, v in values.items()]


@pytest.mark.parametrize("family", [pytest.param("wordpiece", marks=pytest.mark.slow),
                                    pytest.param("bpe", marks=pytest.mark.slow),
                                    pytest.param("sentencepiece", marks=pytest.mark.slow),
                                    pytest.param("huggingface", marks=pytest.mark.slow)])
def test_a_tiny_preset_fine_tunes_and_its_export_runs_without_the_package(
        family, easy_files, tmp_path):
    from keras_nlp_app.export.saved_model import export_run
    from keras_nlp_app.inference import load_predictor

    if family == "huggingface":  # a Transformers checkpoint folder, converted as it loads
        preset = save_transformers_bert(tmp_path / "preset")[0]
    else:
        preset = save_tiny_preset(family, tmp_path / "preset")
    cfg = load_config(["configs/sst2_lstm.yaml"],
                      overrides(*easy_files, preset, **{"train.steps_per_epoch": 3}))
    run_dir = train(cfg, run_dir=str(tmp_path / "run"))
    exported = export_run(run_dir, str(tmp_path / "model"))  # checks the reload equals the run
    texts = ["a great film", "an awful , lifeless plot", "", "ünïcödé ✓"]
    expected = load_predictor(run_dir).predict({"text": texts})["probabilities"]
    done = subprocess.run([sys.executable, "-c", RELOAD, os.path.abspath(exported), json.dumps(texts)],
                          capture_output=True, text=True, cwd="/", timeout=300,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert done.returncode == 0, done.stderr[-2000:]
    np.testing.assert_allclose(json.loads(done.stdout.strip().splitlines()[-1]), expected, atol=1e-5)
    with open(os.path.join(exported, "assets", "metadata.json")) as f:
        assert json.load(f)["tokenizer"]["kind"] == "preset"


def test_a_transformers_checkpoint_folder_loads_its_own_weights_and_vocabulary(tmp_path):
    """A folder as a Hugging Face download holds it (config.json with model_type,
    model.safetensors, vocab.txt) is a backbone: keras-hub converts it, and our loaders take
    its tokenizer from vocab.txt, not from a keras-hub tokenizer.json."""
    from keras_nlp_app.text import presets

    folder, weights = save_transformers_bert(tmp_path / "hf")
    keras_folder = save_tiny_preset("wordpiece", tmp_path / "keras")
    assert presets.is_transformers_folder(folder) and not presets.is_transformers_folder(keras_folder)
    backbone = presets.load_backbone(folder)
    np.testing.assert_array_equal(backbone.get_layer("token_embedding").embeddings.numpy(),
                                  weights["embeddings.word_embeddings.weight"])
    query = backbone.get_layer("transformer_layer_1")._self_attention_layer.query_dense.kernel
    np.testing.assert_allclose(np.reshape(query.numpy(), (16, 16)),
                               weights["encoder.layer.1.attention.self.query.weight"].T)
    tokenizer = presets.PresetTokenizer.from_preset(folder)
    assert presets.tokenize(tokenizer.tokenizer, ["A GREAT film!"]).to_list() == [[8, 9, 12, 7]]
    assert tokenizer.config["registered_name"] == "keras_hub>BertBackbone"


def backbone_of(model):
    import keras_hub

    return next(layer for layer in model.layers if isinstance(layer, keras_hub.models.Backbone))


def test_lora_trains_only_the_lora_factors_and_the_head(easy_files, tmp_path):
    from keras_nlp_app.runs import restore_run

    preset = save_tiny_preset("wordpiece", tmp_path / "preset")
    cfg = load_config(["configs/sst2_lstm.yaml"], overrides(
        *easy_files, preset, **{"model.finetune": "lora", "model.lora_rank": 2,
                                "train.epochs": 4, "train.learning_rate": 0.03}))
    run_dir = train(cfg, run_dir=str(tmp_path / "lora"))
    with open(os.path.join(run_dir, "metrics.json")) as f:
        metrics = json.load(f)
    run = restore_run(run_dir)
    trainable = [v.path for v in run.model.trainable_weights]
    # keras-hub's LoRA trains the factors and leaves the adapted layers' biases trainable
    assert trainable and all("lora" in p or p.endswith("bias") or "probabilities" in p
                             for p in trainable)
    assert sum("lora" in p for p in trainable) == 2 * 2 * 2  # (A, B) x (query, value) x 2 layers
    assert metrics["trainable_parameters"] == sum(int(np.prod(v.shape)) for v in run.model.trainable_weights)
    assert metrics["trainable_parameters"] < metrics["parameters"] / 3
    # the pretrained (non-LoRA) weights are those of the preset, untouched
    import keras_hub

    original = keras_hub.models.Backbone.from_preset(preset).weights
    tuned = [v for v in backbone_of(run.model).weights if "lora" not in v.path]
    assert len(original) == len(tuned)
    adapted = 0
    for before, after in zip(original, tuned):
        if after.path in trainable:
            continue
        change = np.array(after) - np.array(before)
        if after.path.endswith(("query/kernel", "value/kernel")):
            # checkpoints hold LoRA merged into the kernel `[hidden, heads, head_dim]`: each
            # head's change has rank <= 2 (keras' EinsumDense factors it per head)
            for head in range(change.shape[1]):
                assert np.linalg.matrix_rank(change[:, head, :], tol=1e-6) <= 2
            adapted += 1
        else:  # every other pretrained weight is the preset's, untouched
            np.testing.assert_array_equal(change, 0)
    assert adapted == 4
    # the LoRA factors learn (slowly: this backbone's embeddings are random and stay frozen)
    losses = [epoch["loss"] for epoch in metrics["history"]]
    assert losses[-1] < losses[0] - 0.03


def test_a_frozen_backbone_trains_only_the_head(easy_files, tmp_path):
    preset = save_tiny_preset("wordpiece", tmp_path / "preset")
    cfg = load_config(["configs/sst2_lstm.yaml"], overrides(
        *easy_files, preset, **{"model.finetune": "frozen", "train.steps_per_epoch": 2}))
    with open(os.path.join(train(cfg, run_dir=str(tmp_path / "frozen")), "metrics.json")) as f:
        metrics = json.load(f)
    assert metrics["trainable_parameters"] == 16 + 1  # the sigmoid head over 16 features


def test_group_rates_decay_by_depth_and_unfreeze_top_down():
    assert group_rates(4, 0, decay=0.5) == [0.125, 0.25, 0.5, 1.0]
    assert group_rates(4, 0, unfreeze_every=1) == [0.0, 0.0, 0.0, 1.0]
    assert group_rates(4, 2, unfreeze_every=1) == [0.0, 1.0, 1.0, 1.0]
    assert group_rates(4, 5, decay=0.5, unfreeze_every=2) == [0.0, 0.25, 0.5, 1.0]


@pytest.mark.slow
def test_gradual_unfreezing_keeps_lower_layers_still_until_their_epoch(easy_files, tmp_path):
    """Epoch 1 trains the head alone: the backbone's weights after it equal the preset's."""
    import keras_hub

    from keras_nlp_app.runs import restore_run

    preset = save_tiny_preset("wordpiece", tmp_path / "preset")
    cfg = load_config(["configs/sst2_lstm.yaml"], overrides(
        *easy_files, preset, **{"train.gradual_unfreezing": 1, "train.epochs": 2,
                                "train.layerwise_lr_decay": 0.5, "train.steps_per_epoch": 3,
                                "train.optimizer": "adam"}))
    run_dir = train(cfg, run_dir=str(tmp_path / "gradual"))
    original = keras_hub.models.Backbone.from_preset(preset).weights
    model = restore_run(run_dir).model
    model.load_weights(os.path.join(run_dir, "checkpoints", "last.weights.h5"))
    tuned = backbone_of(model).weights
    changed = {after.path for before, after in zip(original, tuned)
               if not np.array_equal(np.array(before), np.array(after))}
    # epoch 2 let the top transformer layer (layer 1 of 2) learn; the embeddings and layer 0 wait
    assert any("transformer_layer_1" in path for path in changed)
    assert not any("transformer_layer_0" in path or "embedding" in path for path in changed)


@pytest.mark.parametrize("backbone, message", [
    ("no_such_preset_name", "unknown preset 'no_such_preset_name'"),
    ("missing/preset/folder", "no preset folder at missing/preset/folder"),
])
def test_a_bad_backbone_is_one_line_and_exit_2_before_anything_is_written(
        backbone, message, easy_files, tmp_path, capsys):
    run_dir = tmp_path / "never"
    code = main(["train", "configs/sst2_lstm.yaml", "--run-dir", str(run_dir),
                 *[f"--set={o}" for o in overrides(*easy_files, backbone)]])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and message in err
    assert not run_dir.exists()


@pytest.mark.parametrize("damage, message", [
    ("vocab.txt", "cannot load the tokenizer"),
    ("model.safetensors", "cannot load the backbone"),
])
def test_a_broken_transformers_checkpoint_is_one_line_and_exit_2(damage, message, easy_files,
                                                                 tmp_path, capsys):
    folder = save_transformers_bert(tmp_path / "hf")[0]
    if damage == "vocab.txt":
        os.remove(os.path.join(folder, damage))
    else:  # a download cut short
        path = os.path.join(folder, damage)
        with open(path, "rb") as f:
            head = f.read(2000)
        with open(path, "wb") as f:
            f.write(head)
    run_dir = tmp_path / "never"
    code = main(["train", "configs/sst2_lstm.yaml", "--run-dir", str(run_dir),
                 *[f"--set={o}" for o in overrides(*easy_files, folder)]])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and message in err, err
    assert not run_dir.exists()


def test_an_offline_handle_is_one_line_and_exit_2(easy_files, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("KAGGLEHUB_CACHE", str(tmp_path / "empty_cache"))
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")  # nothing listens: offline at once
    run_dir = tmp_path / "never"
    code = main(["train", "configs/sst2_lstm.yaml", "--run-dir", str(run_dir),
                 *[f"--set={o}" for o in overrides(*easy_files, "kaggle://keras/bert/keras/bert_tiny_en_uncased")]])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "kaggle://keras/bert/keras/bert_tiny_en_uncased" in err and not run_dir.exists()


@pytest.mark.slow  # over 20 s on 2 cores
@pytest.mark.parametrize("family", ["wordpiece", "bpe"])
def test_a_tagger_fine_tunes_a_preset_at_each_words_first_piece(family, tmp_path):
    """A backbone tagger learns the easy NER task through the preset's pieces, and its export
    (the preset tokenizer inside) tags like the run."""
    import random

    from keras_nlp_app.export.saved_model import export_run
    from keras_nlp_app.inference import predict

    rng = random.Random(0)
    people, places = (["Ada"], ["Alan", "Turing"]), (["Paris"], ["New", "York"])
    lines = ["-DOCSTART- -X- O O", ""]
    for _ in range(80):
        tokens = ([(w, "I-PER") for w in rng.choice(people)] + [("visited", "O")]
                  + [(w, "I-LOC") for w in rng.choice(places)] + [(".", "O")])
        lines += [f"{w} NNP I-NP {t}" for w, t in tokens] + [""]
    (tmp_path / "train.txt").write_text("\n".join(lines) + "\n")
    (tmp_path / "valid.txt").write_text("\n".join(lines[:60]) + "\n")
    preset = save_tiny_preset(family, tmp_path / "preset")
    cfg = load_config(["configs/conll2003.yaml"], [
        "data.dataset=null", f"data.train_file={tmp_path / 'train.txt'}",
        f"data.validation_file={tmp_path / 'valid.txt'}", "model.name=backbone_tagger",
        f"model.backbone={preset}", "model.params={word_features: true, word_dim: 8, char_filters: 8}",
        "tokenizer.sequence_length=12", "train.epochs=8", "train.batch_size=16",
        "train.learning_rate=0.01", "train.verbose=0", "train.monitor=val_f1"])
    run_dir = train(cfg, run_dir=str(tmp_path / "run"))
    with open(os.path.join(run_dir, "metrics.json")) as f:
        assert json.load(f)["f1"] > 0.8
    exported = export_run(run_dir, str(tmp_path / "model"))
    texts = {"text": ["Ada visited New York .", "Alan Turing visited Paris .", ""]}
    assert predict(exported, texts) == predict(run_dir, texts)


DECODER_FAMILIES = ["gpt2", "gemma"]  # byte-pair and SentencePiece causal LMs


def _backbone_lm(family, folder):
    from keras_nlp_app.models import build_model
    from keras_nlp_app.text.presets import PresetLMPreprocessor, PresetTokenizer, load_backbone

    preset = save_tiny_preset(family, folder)
    preprocessor = PresetLMPreprocessor(PresetTokenizer.load(preset), 16)
    model = build_model("backbone_lm", backbone=load_backbone(preset),
                        pad_token_id=preprocessor.pad_token_id,
                        never_generated=preprocessor.never_generated, context_length=16)
    return preprocessor, model


@pytest.mark.parametrize("family", DECODER_FAMILIES)
def test_a_backbone_lm_step_through_its_cache_equals_the_whole_pass(family, tmp_path):
    """Shifted ids in, one logit column more out (padding, never likely); keras-hub's key/value
    cache, filled by `prefill` then one `decode_step`, gives the full pass's next logits."""
    preprocessor, model = _backbone_lm(family, tmp_path / "preset")
    tokens = preprocessor.prompt_ids(["the film was great"]).to_tensor()
    logits = model(tokens).numpy()
    assert logits.shape == (1, tokens.shape[1], preprocessor.vocabulary_size)
    assert (logits[..., 0] < -1e8).all()
    cache = model.prefill(tokens[:, :-1])
    step, _ = model.decode_step(tokens[:, -1], cache, tokens.shape[1] - 1)
    np.testing.assert_allclose(step.numpy()[0], logits[0, -1], atol=1e-4)


@pytest.mark.slow  # XLA compiles four decoding loops
@pytest.mark.parametrize("family", DECODER_FAMILIES)
def test_a_backbone_lm_decodes_with_its_cache_as_without(family, tmp_path):
    """Greedy and beam decoding through keras-hub's key/value cache give the uncached tokens;
    the padding column and the preset's special tokens are never generated."""
    from keras_nlp_app import decoding

    preprocessor, model = _backbone_lm(family, tmp_path / "preset")
    prompts = preprocessor.prompt_ids(["the film was", "a"])
    for strategy in ("greedy", "beam"):
        cached, uncached = (decoding.decode_ids(model, prompts, max_new_tokens=12, strategy=strategy,
                                                use_cache=use_cache).numpy()
                            for use_cache in (True, False))
        np.testing.assert_array_equal(cached, uncached)
        assert not np.isin(cached[:, 1:], [i for i in preprocessor.never_generated if i]).any()


LOAD_CAUSAL_LM = """
import sys
import keras_hub
lm = keras_hub.models.CausalLM.from_preset(sys.argv[1])
assert "keras_nlp_app" not in sys.modules
print(lm.generate("the film", max_length=12))
"""


@pytest.mark.slow  # about 40 s a family on 2 cores
@pytest.mark.parametrize("family", [*DECODER_FAMILIES, "fresh"])
def test_a_causal_lm_preset_fine_tunes_generates_and_exports(family, tmp_path, capsys):
    """`task: lm` over a decoder preset (or a fresh decoder with a SentencePiece vocabulary
    learned from the text: pretraining from scratch) learns the text, writes its own keras-hub
    preset, and exports a SavedModel that scores and generates as the run does (the export
    checks it)."""
    if family == "fresh":
        start = {"model.params": "{decoder: {num_layers: 2, num_heads: 2, hidden_dim: 16, "
                                 "intermediate_dim: 32}}", "tokenizer.vocab_size": 320}
    else:
        start = {"model.backbone": save_tiny_preset(family, tmp_path / "preset")}
    train_file = tmp_path / "train.txt"
    sentences = ["the film was great", "the movie is dull", "a good plot and fine acting"]
    train_file.write_text("\n".join(sentences[i % 3] for i in range(600)) + "\n")
    config = tmp_path / "lm.yaml"
    config.write_text("task: lm\nname: lm_preset\n")
    run = str(tmp_path / "run")
    settings = {"data.dataset": "null", "data.train_file": train_file,
                "data.holdout_fraction": 0.2, "model.name": "backbone_lm", **start,
                "tokenizer.sequence_length": 32,
                "train.batch_size": 8, "train.epochs": 3, "train.learning_rate": 0.01,
                "train.monitor": "val_loss", "train.verbose": 0}
    assert main(["train", str(config), "--run-dir", run,
                 *sum([["--set", f"{k}={v}"] for k, v in settings.items()], [])]) == 0
    with open(os.path.join(run, "metrics.json")) as f:
        metrics = json.load(f)
    assert metrics["perplexity"] < 8  # from about the vocabulary size (60-300) at the start
    assert 0 < metrics["bits_per_character"] < 8
    assert main(["export", run, "--output", str(tmp_path / "export")]) == 0
    capsys.readouterr()
    assert main(["generate", str(tmp_path / "export"), "--prompt", "the film",
                 "--max-new-tokens", "4", "--strategy", "greedy"]) == 0
    assert capsys.readouterr().out.startswith("the film ")
    done = subprocess.run([sys.executable, "-c", LOAD_CAUSAL_LM, metrics["preset"]],
                          capture_output=True, text=True, cwd="/", timeout=300,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().startswith("the film")


@pytest.mark.parametrize("setting, message", [
    ({"tokenizer.vocab_size": 50}, "too small for a fresh decoder"),
    ({"model.backbone": "encoder"}, "no causal-LM head"),
    ({"model.params": "{decoder: {num_layers: 2, hidden_dim: 10, num_heads: 4}}"},
     "not a multiple of num_heads"),
    ({"model.backbone": "decoder", "model.params": "{decoder: {num_layers: 2}}"},
     "sizes a fresh decoder"),
])
def test_a_causal_lm_config_that_cannot_work_is_one_line_and_exit_2(setting, message, tmp_path,
                                                                     capsys):
    family = {"encoder": "wordpiece", "decoder": "gpt2"}.get(setting.get("model.backbone"))
    if family:
        setting = {**setting, "model.backbone": save_tiny_preset(family, tmp_path / "preset")}
    train_file = tmp_path / "train.txt"
    train_file.write_text("the film was great\n" * 200)
    config = tmp_path / "lm.yaml"
    config.write_text("task: lm\nname: lm_preset\n")
    settings = {"data.dataset": "null", "data.train_file": train_file, "model.name": "backbone_lm",
                "train.monitor": "loss", "tokenizer.vocab_size": 320,
                "tokenizer.sequence_length": 16, "train.batch_size": 4, **setting}
    run = tmp_path / "run"
    assert main(["train", str(config), "--run-dir", str(run),
                 *sum([["--set", f"{k}={v}"] for k, v in settings.items()], [])]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not run.exists()


@pytest.mark.slow  # a training, its validation samples and two preset loads: about 30-60 s
def test_a_lora_causal_lm_run_writes_a_plain_preset_with_the_factors_merged(tmp_path):
    """The preset of a LoRA run loads in keras-hub without LoRA and computes what the run's
    model computes: kernels = base + scaled A·B, not the base preset's."""
    import keras_hub

    from keras_nlp_app.runs import restore_run

    preset = save_tiny_preset("gpt2", tmp_path / "preset")
    train_file = tmp_path / "train.txt"
    train_file.write_text("the film was great\nthe movie is dull\n" * 100)
    config = tmp_path / "lm.yaml"
    config.write_text("task: lm\nname: lm_lora\n")
    cfg = load_config([str(config)], [
        "data.dataset=null", f"data.train_file={train_file}", "data.holdout_fraction=0.2",
        "model.name=backbone_lm", f"model.backbone={preset}", "model.finetune=lora",
        "model.lora_rank=2", "tokenizer.sequence_length=16", "train.batch_size=8",
        "train.epochs=1", "train.learning_rate=0.01", "train.monitor=val_loss",
        "train.verbose=0"])
    run_dir = train(cfg, run_dir=str(tmp_path / "run"))
    with open(os.path.join(run_dir, "metrics.json")) as f:
        written = json.load(f)["preset"]
    trained = restore_run(run_dir).model.causal_lm.backbone
    merged = keras_hub.models.Backbone.from_preset(written)
    base = keras_hub.models.Backbone.from_preset(preset)
    assert not any("lora" in v.path for v in merged.weights)
    inputs = {"token_ids": np.array([[5, 9, 3, 7, 2, 4]], np.int32),
              "padding_mask": np.ones((1, 6), bool)}
    expected = np.asarray(trained(inputs))
    np.testing.assert_allclose(np.asarray(merged(inputs)), expected, atol=1e-5)
    assert np.abs(np.asarray(base(inputs)) - expected).max() > 1e-4


def test_lora_all_adapts_every_attention_and_feed_forward_projection():
    import keras_hub

    from keras_nlp_app.models.backbone_classifier import apply_finetune

    def factors(finetune):
        backbone = keras_hub.models.BertBackbone(vocabulary_size=50, num_layers=2, num_heads=2,
                                                 hidden_dim=8, intermediate_dim=16,
                                                 max_sequence_length=8)
        apply_finetune(backbone, finetune, 2)
        trainable = [v.path for v in backbone.trainable_weights]
        assert all("lora" in p or p.endswith("bias") for p in trainable)
        return sorted({p.split("/")[-2] for p in trainable if "lora" in p})

    assert factors("lora") == ["query", "value"]
    assert factors("lora_all") == ["attention_output", "feedforward_intermediate_dense",
                                   "feedforward_output_dense", "key", "query", "value"]
