"""`knlp tune`: hyperparameter search with Optuna over the search space a config's `tune:`
section declares.

Every trial is a normal run folder (`<study>/trial-NNN`), trained by the shared trainer with the
trial's values set; its validation `train.monitor` is reported each epoch, so Optuna's median
pruner stops trials that fall behind. The study lives in a journal file in the study folder:
running the same command again after a crash continues it, an interrupted trial resuming from
its run folder's backup. The best trial's config is written as `best.yaml`.

Search space (dotted config keys):
    tune:
      train.learning_rate: {log_uniform: [1.0e-4, 1.0e-2]}
      train.batch_size: [32, 64, 128]           # a list: one of these
      model.params.lstm_units: {int: [32, 256], step: 32}
      model.params.dropout: {uniform: [0.0, 0.5]}
"""

import json
import logging
import os

from keras_nlp_app import config as config_lib
from keras_nlp_app.errors import ConfigError, UserError
from keras_nlp_app.utils import atomic

log = logging.getLogger("keras_nlp_app")

RANGES = ("uniform", "log_uniform", "int", "log_int")
STUDY = "study.journal"
BEST = "best.yaml"
TRIALS = "trials.json"


def _nested(dotted, value):
    for part in reversed(dotted.split(".")):
        value = {part: value}
    return value


def _deep_merge(into, update):
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _deep_merge(into[key], value)
        else:
            into[key] = value
    return into


def parse_space(space):
    """`{key: (kind, arguments)}` from the `tune:` section, checked; kind is `choice` or one of
    RANGES."""
    if not space:
        raise ConfigError("the config has no tune: section; declare the search space there, e.g. "
                          "tune: {train.learning_rate: {log_uniform: [1.0e-4, 1.0e-2]}}", key="tune")
    parsed = {}
    for key, spec in space.items():
        where = f"tune.{key}"
        if isinstance(spec, list) and spec:
            parsed[key] = ("choice", spec)
            continue
        kinds = [k for k in RANGES if isinstance(spec, dict) and k in spec]
        extra = set(spec) - set(RANGES) - {"step"} if isinstance(spec, dict) else set()
        if len(kinds) != 1 or extra:
            raise ConfigError(f"{where} must be a list of choices or one of {{{', '.join(RANGES)}: "
                              f"[low, high]}} (with an optional step), got {spec!r}", key=where)
        kind = kinds[0]
        bounds = spec[kind]
        numeric = isinstance(bounds, list) and len(bounds) == 2 and all(
            isinstance(b, (int, float)) and not isinstance(b, bool) for b in bounds)
        if not numeric or not bounds[0] < bounds[1] or (kind.startswith("log") and bounds[0] <= 0):
            raise ConfigError(f"{where}: {kind} needs [low, high] with low < high"
                              f"{' and low > 0' if kind.startswith('log') else ''}, got {bounds!r}",
                              key=where)
        if kind in ("int", "log_int") and not all(isinstance(b, int) for b in bounds):
            raise ConfigError(f"{where}: {kind} bounds must be integers, got {bounds!r}", key=where)
        parsed[key] = (kind, {"low": bounds[0], "high": bounds[1], "step": spec.get("step")})
    return parsed


def suggest(trial, space):
    """The trial's `{dotted key: value}` drawn from the parsed space."""
    values = {}
    for key, (kind, arguments) in space.items():
        if kind == "choice":
            values[key] = trial.suggest_categorical(key, arguments)
        elif kind in ("int", "log_int"):
            values[key] = trial.suggest_int(key, arguments["low"], arguments["high"],
                                            step=arguments["step"] or 1, log=kind == "log_int")
        else:
            values[key] = trial.suggest_float(key, arguments["low"], arguments["high"],
                                              step=arguments["step"], log=kind == "log_uniform")
    return values


def trial_config(cfg, values, name):
    """The base config with a trial's values set (and no search space of its own)."""
    changes = {"name": name, "tune": {}}
    for key, value in values.items():
        _deep_merge(changes, _nested(key, value))
    try:
        trial = config_lib.updated(cfg, changes)
    except ConfigError as exc:
        raise ConfigError(f"tune: {exc}", key=exc.key) from None
    trial.tune = {}
    return trial


def _check_space(cfg, space):
    """Every choice and both ends of every range must make a valid config (before any trial)."""
    for key, (kind, arguments) in space.items():
        ends = arguments if kind == "choice" else [arguments["low"], arguments["high"]]
        for value in ends:
            try:
                trial_config(cfg, {key: value}, cfg.name)
            except ConfigError as exc:
                raise ConfigError(str(exc), key=f"tune.{key}") from None


def _direction(monitor):
    from keras_nlp_app.callbacks import monitor_mode

    return f"{monitor_mode(monitor)}imize"


def _pruning_callback(trial, monitor, epochs):
    """Reports each epoch's monitor to the trial; stops the run when the pruner says so (never
    after the last epoch: a finished trial is worth its value)."""
    import keras
    import optuna

    class ReportAndPrune(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            value = (logs or {}).get(monitor)
            if value is None:
                return
            trial.report(float(value), epoch)
            if epoch + 1 < epochs and trial.should_prune():
                raise optuna.TrialPruned(f"epoch {epoch + 1}: {monitor} {value:.4f} behind the median")

    return ReportAndPrune()


def _best_value(run_dir, monitor, direction):
    with open(os.path.join(run_dir, "metrics.json"), encoding="utf-8") as f:
        history = json.load(f)["history"]
    values = [epoch[monitor] for epoch in history if monitor in epoch]
    if not values:
        raise UserError(f"{run_dir}: train.monitor {monitor} was never logged")
    return min(values) if direction == "minimize" else max(values)


def _run_trial(study, trial, cfg, space, study_dir):
    """Trains one trial's run folder and tells the study how it went."""
    import keras
    import optuna

    from keras_nlp_app.training.train import train

    values = suggest(trial, space)
    run_dir = os.path.join(study_dir, f"trial-{trial.number:03d}")
    trial.set_user_attr("run_dir", run_dir)
    keras.backend.clear_session()
    try:
        train(trial_config(cfg, values, f"{cfg.name}-trial-{trial.number:03d}"), run_dir,
              extra_callbacks=[_pruning_callback(trial, cfg.train.monitor, cfg.train.epochs)])
    except optuna.TrialPruned as pruned:
        log.info("trial %d pruned (%s)", trial.number, pruned)
        study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        return
    except (UserError, ValueError, ArithmeticError) as exc:  # a trial the settings break
        log.warning("trial %d failed: %s", trial.number, exc)
        trial.set_user_attr("error", str(exc)[:500])
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
        return
    value = _best_value(run_dir, cfg.train.monitor, study.direction.name.lower())
    log.info("trial %d: %s %.4f %s", trial.number, cfg.train.monitor, value, values)
    study.tell(trial, value)


def _write_summary(study, cfg, space, study_dir):
    import optuna

    trials = [{"number": t.number, "state": t.state.name, "value": t.value, "params": t.params,
               "run_dir": t.user_attrs.get("run_dir"), **({"error": t.user_attrs["error"]}
                                                          if "error" in t.user_attrs else {})}
              for t in study.trials]
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    summary = {"study_dir": study_dir, "monitor": cfg.train.monitor,
               "direction": study.direction.name.lower(), "trials": len(study.trials),
               "complete": len(complete),
               "pruned": sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials),
               "failed": sum(t.state == optuna.trial.TrialState.FAIL for t in study.trials)}
    if complete:
        best = study.best_trial
        config_lib.dump_config(trial_config(cfg, {k: best.params[k] for k in space}, cfg.name),
                               os.path.join(study_dir, BEST))
        summary.update(best_value=best.value, best_params=best.params, best_trial=best.number,
                       best_config=os.path.join(study_dir, BEST))
    atomic.write_json(os.path.join(study_dir, TRIALS), {**summary, "all": trials})
    return summary


def tune(cfg, study_dir, trials):
    """Runs the study until it holds `trials` finished trials; returns its summary."""
    if trials < 1:
        raise UserError(f"--trials must be at least 1, got {trials}")
    space = parse_space(cfg.tune)
    _check_space(cfg, space)
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    os.makedirs(study_dir, exist_ok=True)
    storage = JournalStorage(JournalFileBackend(os.path.join(study_dir, STUDY)))
    direction = _direction(cfg.train.monitor)
    study = optuna.create_study(
        study_name=cfg.name, storage=storage, direction=direction, load_if_exists=True,
        pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=0))
    # seeded by the trials already held, so a resumed study draws new values, not the first ones
    study.sampler = optuna.samplers.TPESampler(seed=cfg.train.seed + len(study.trials),
                                               n_startup_trials=min(10, max(trials // 2, 1)))
    others = [name for name in optuna.get_all_study_names(storage) if name != cfg.name]
    recipe = json.dumps(config_lib.config_to_dict(cfg), sort_keys=True)
    stored = study.user_attrs.get("config")
    if others or stored not in (None, recipe):
        raise UserError(f"{study_dir} holds a study of another config ({', '.join(others) or cfg.name}"
                        f"); its trial folders would not match. Pick another --study-dir")
    if stored is None:
        study.set_user_attr("config", recipe)
    # trials a crash left running go on from their run folders' backups (one process per study)
    for frozen in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        log.info("resuming trial %d", frozen.number)
        _run_trial(study, optuna.trial.Trial(study, frozen._trial_id), cfg, space, study_dir)
        _write_summary(study, cfg, space, study_dir)
    finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED,
                optuna.trial.TrialState.FAIL)
    while len(study.get_trials(deepcopy=False, states=finished)) < trials:
        _run_trial(study, study.ask(), cfg, space, study_dir)
        _write_summary(study, cfg, space, study_dir)
    summary = _write_summary(study, cfg, space, study_dir)
    if not summary["complete"]:
        raise UserError(f"no trial of {study_dir} completed (see {os.path.join(study_dir, TRIALS)})")
    return summary
