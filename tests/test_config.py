import pytest

from keras_nlp_app.config import Config, config_to_dict, load_config, parse_override
from keras_nlp_app.errors import ConfigError


def test_base_yaml_documents_exactly_the_defaults():
    assert config_to_dict(load_config(["configs/base.yaml"])) == config_to_dict(Config())
    text = open("configs/base.yaml", encoding="utf-8").read()
    leaf_lines = [l for l in text.splitlines() if ":" in l and not l.rstrip().endswith(":")
                  and not l.startswith("#")]
    assert all("  # " in line for line in leaf_lines)


def test_recipe_then_overrides_apply_in_order():
    cfg = load_config(["configs/sst2_lstm.yaml"], ["train.epochs=7", "model.params.lstm_units=8",
                                                   "train.clipnorm=1.5"])
    assert cfg.train.epochs == 7
    assert cfg.model.params["lstm_units"] == 8
    assert cfg.model.params["embedding_dim"] == 64  # the recipe's other params survive
    assert cfg.train.clipnorm == 1.5


def test_override_values_are_parsed_as_yaml():
    assert parse_override("a.b=[1, 2]") == {"a": {"b": [1, 2]}}
    assert parse_override("a=null") == {"a": None}
    with pytest.raises(ConfigError, match="section.key=value"):
        parse_override("no_equals_sign")


def test_unknown_key_lists_the_valid_ones():
    with pytest.raises(ConfigError) as error:
        load_config([], ["train.epoch=3"])
    assert "unknown config key train.epoch" in str(error.value)
    assert "train.epochs" in str(error.value)


def test_wrong_type_and_bad_choice_are_rejected():
    with pytest.raises(ConfigError, match="train.epochs must be int"):
        load_config([], ["train.epochs=three"])
    with pytest.raises(ConfigError, match="one of auto, one_device, mirrored, multi_worker"):
        load_config([], ["train.strategy=tpu"])


def test_bad_yaml_file_names_file_and_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("train:\n  epochs: [1\n")
    with pytest.raises(ConfigError, match=r"bad.yaml:\d+: not valid YAML"):
        load_config([str(path)])
    with pytest.raises(ConfigError, match="config file not found"):
        load_config([str(tmp_path / "missing.yaml")])


def test_switching_model_drops_the_previous_models_params():
    cfg = load_config(["configs/sst2_lstm.yaml"], ["model.name=cnn_classifier", "model.params.num_filters=8"])
    assert cfg.model.params == {"num_filters": 8}


def test_on_and_off_switches_survive_yaml_booleans():
    # YAML 1.1 (PyYAML) reads a bare on/off as true/false
    assert load_config([], ["train.jit_compile=off"]).train.jit_compile == "off"
    assert load_config([], ["train.jit_compile=on"]).train.jit_compile == "on"


def test_a_rate_in_exponent_notation_is_a_number_wherever_it_is_written(tmp_path):
    # YAML 1.1 (PyYAML) reads 5e-5 (no dot in the mantissa) as the string '5e-5'
    assert load_config([], ["train.learning_rate=5e-5"]).train.learning_rate == 5e-5
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("train:\n  learning_rate: 3E-4\n  label_smoothing: 1e-1\n")
    cfg = load_config([str(recipe)])
    assert (cfg.train.learning_rate, cfg.train.label_smoothing) == (3e-4, 0.1)
    for bad in ("fast", "1e", "e-5"):
        with pytest.raises(ConfigError, match="train.learning_rate must be float"):
            load_config([], [f"train.learning_rate={bad}"])


def test_every_recipe_loads_and_a_list_of_text_fields_is_accepted():
    import glob

    for recipe in sorted(glob.glob("configs/*.yaml")):
        if not recipe.endswith("_rules.yaml"):  # dialogue rules (docs/dialogue.md), not a run
            load_config([recipe])
    assert load_config(["configs/ag_news.yaml"]).data.text_field == ["title", "description"]


def test_a_setting_only_other_tasks_read_is_refused_naming_the_line(tmp_path):
    from keras_nlp_app.cli import main
    from keras_nlp_app.tasks import TASKS, get_task
    from keras_nlp_app.tasks.base import refuse_other_tasks_settings

    with pytest.raises(ConfigError, match=r"^data.mirror_pairs is read by task relation only, "
                                          r"not by task classification"):
        refuse_other_tasks_settings(load_config(["configs/sst2_lstm.yaml"], [
            "data.mirror_pairs=true"]), get_task("classification"))
    # the default value, or a task that reads it, is fine
    for overrides, task in ((["data.mirror_pairs=false"], "classification"),
                            (["data.mirror_pairs=true"], "relation"),
                            (["tokenizer.start_token=<eos>"], "relation")):
        refuse_other_tasks_settings(load_config(["configs/semeval2010.yaml"], overrides),
                                    get_task(task))
    recipe = tmp_path / "tagger.yaml"
    recipe.write_text("task: tagging\ndata:\n  dataset: conll2003\ntokenizer:\n  kind: word\n"
                      "  start_token: <eos>\n")
    assert main(["train", str(recipe), "--run-dir", str(tmp_path / "run")]) == 2
    assert not (tmp_path / "run").exists()
    defaults = Config()
    for task in TASKS.values():  # every declared setting is a real key
        for dotted in task.settings:
            section, key = dotted.split(".")
            assert hasattr(getattr(defaults, section), key), dotted
