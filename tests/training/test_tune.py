"""knlp tune: trials are normal run folders, the best config is written, and a study resumes —
after it finished (more trials) and after a crash left a trial running."""

import json
import os

import pytest
import yaml

from keras_nlp_app.cli import main
from tests.conftest import tiny_overrides

SPACE = ("tune={train.learning_rate: {log_uniform: [0.003, 0.03]}, "
         "model.params.lstm_units: [8, 16]}")


def _args(easy_files, study_dir, trials):
    overrides = tiny_overrides(*easy_files, **{"train.epochs": 1})
    return ["tune", "configs/sst2_lstm.yaml", "--trials", str(trials), "--study-dir",
            str(study_dir), "--json", *[a for o in overrides for a in ("--set", o)], "--set", SPACE]


@pytest.mark.slow  # about 22 s; the crash-resume test below keeps knlp tune in the default suite
def test_tune_runs_trials_writes_the_best_config_and_resumes(easy_files, tmp_path, capsys):
    study_dir = tmp_path / "study"
    assert main(_args(easy_files, study_dir, 2)) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["trials"] == 2 and summary["complete"] == 2
    trials = json.load(open(study_dir / "trials.json"))["all"]
    for trial in trials:
        assert os.path.exists(os.path.join(trial["run_dir"], "config.yaml"))
    best = yaml.safe_load(open(study_dir / "best.yaml"))
    assert best["tune"] == {}
    assert best["model"]["params"]["lstm_units"] == summary["best_params"]["model.params.lstm_units"]
    assert best["train"]["learning_rate"] == summary["best_params"]["train.learning_rate"]
    assert 0.5 < summary["best_value"] <= 1.0  # val_accuracy of the easy task

    first = os.path.getmtime(study_dir / "trial-000" / "metrics.json")
    assert main(_args(easy_files, study_dir, 3)) == 0  # the same study, one more trial
    assert json.loads(capsys.readouterr().out)["trials"] == 3
    assert os.path.getmtime(study_dir / "trial-000" / "metrics.json") == first
    trials = json.load(open(study_dir / "trials.json"))["all"]
    assert trials[2]["params"] not in [t["params"] for t in trials[:2]]  # new draws on resume

    # the folder's study belongs to that config: another one is refused, nothing is run
    assert main([*_args(easy_files, study_dir, 4), "--set", "train.epochs=2"]) == 2
    assert "holds a study of another config" in capsys.readouterr().err
    assert not (study_dir / "trial-003").exists()


def test_a_trial_left_running_by_a_crash_is_finished_on_resume(easy_files, tmp_path, capsys):
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    from keras_nlp_app.config import load_config
    from keras_nlp_app.training.tune import STUDY, parse_space, suggest

    study_dir = tmp_path / "study"
    study_dir.mkdir()
    cfg = load_config(["configs/sst2_lstm.yaml"], [SPACE])
    study = optuna.create_study(study_name=cfg.name, direction="maximize",
                                storage=JournalStorage(JournalFileBackend(str(study_dir / STUDY))))
    crashed = study.ask()
    values = suggest(crashed, parse_space(cfg.tune))  # then the process died
    assert main(_args(easy_files, study_dir, 1)) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["trials"] == 1 and summary["best_params"] == values


def test_a_bad_search_space_is_refused_before_any_trial(tmp_path, capsys):
    for space, message in (("tune:\n  train.learning_rate: {log_uniform: [0, 1]}\n", "low > 0"),
                           ("tune:\n  train.nope: [1, 2]\n", "unknown config key train.nope"),
                           ("tune:\n  train.epochs: {int: [0, 3]}\n", "train.epochs must be at least 1"),
                           ("train:\n  epochs: 1\n", "no tune: section")):
        config = tmp_path / "space.yaml"
        config.write_text(space)
        assert main(["tune", str(config), "--trials", "2", "--study-dir", str(tmp_path / "s")]) == 2
        err = capsys.readouterr().err
        assert message in err and "space.yaml" in err, err
        assert not (tmp_path / "s").exists()
