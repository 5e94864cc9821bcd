"""The run folder: its layout, reading it without TensorFlow, and restoring a trained model.

Training writes it, and export, evaluation and prediction read it, all through this module:

    config.yaml              the resolved config; the run is rebuilt from it alone
    assets/                  tokenizer (vocab.txt, tokenizer.json), labels.txt, label_space.json
    checkpoints/best.weights.h5   best weights by train.monitor (written atomically)
    checkpoints/last.weights.h5   weights after the last epoch
    backup/                  step-level training state while training; the same command resumes
    workers/<i>/             what workers other than the chief write (multi-worker runs)
    logs/train, logs/validation   TensorBoard
    metrics.json             validation metrics of the best checkpoint, and every epoch's logs
"""

import contextlib
import dataclasses
import filecmp
import os
import shutil

from keras_nlp_app import config as config_lib
from keras_nlp_app.errors import UserError
from keras_nlp_app.tasks import get_task

CONFIG = config_lib.RUN_CONFIG
ASSETS = config_lib.RUN_ASSETS
CHECKPOINTS = "checkpoints"
BACKUP = "backup"
METRICS = "metrics.json"
BEST_WEIGHTS = "best.weights.h5"
LAST_WEIGHTS = "last.weights.h5"


def is_run_dir(path):
    return os.path.isfile(os.path.join(path, CONFIG))


def default_run_dir(cfg, root="runs"):
    """`runs/<name>`, or the first `runs/<name>-N` that is free or holds an unfinished run."""
    base = os.path.join(root, cfg.name)
    candidate, n = base, 1
    while os.path.exists(candidate):
        if os.path.isdir(os.path.join(candidate, BACKUP)) or not os.path.exists(
                os.path.join(candidate, METRICS)):
            return candidate
        n += 1
        candidate = f"{base}-{n}"
    return candidate


def read_config(path):
    """The `Config` a run folder's config.yaml holds (defaults for keys it lacks)."""
    return config_lib.load_config([path])


@contextlib.contextmanager
def removed_on_failure(run_dir):
    """Removes the run folder again when the block fails and the folder did not exist before
    it: setup that refuses a config or a model leaves nothing behind. A folder that existed (a
    run being resumed) is kept as it was found."""
    created = not os.path.exists(run_dir)
    try:
        yield
    except BaseException:
        if created:
            shutil.rmtree(run_dir, ignore_errors=True)
        raise


def prepare_run_dir(cfg, run_dir):
    """Creates the folder and saves the resolved config; refuses a trained run of another config."""
    os.makedirs(run_dir, exist_ok=True)
    saved = os.path.join(run_dir, CONFIG)
    if os.path.exists(saved):
        previous = read_config(saved)
        if config_lib.config_to_dict(previous) != config_lib.config_to_dict(cfg):
            trained = any(os.path.isdir(os.path.join(run_dir, d)) for d in (CHECKPOINTS, BACKUP))
            if trained:
                raise UserError(
                    f"{run_dir} holds a run with a different config; pick another --run-dir "
                    f"or delete that folder")
            # a run that stopped before training: nothing to lose, start it afresh
            shutil.rmtree(os.path.join(run_dir, ASSETS), ignore_errors=True)
    config_lib.dump_config(cfg, saved)


@dataclasses.dataclass
class RestoredRun:
    """Everything needed to predict with or export a trained run."""

    cfg: object
    preprocessor: object
    model: object
    space: object  # the task's label space; None for tasks without labels
    # other restored runs an export chains with this one, by role (a relation run's "tagger")
    companions: dict = dataclasses.field(default_factory=dict)

    @property
    def task(self):
        return get_task(self.cfg.task)

    def serve(self, inputs):
        """serving_default's outputs for `{input name: [B] string tensor}`."""
        return self.task.serve(self, inputs)


def read_run(run_dir):
    """(config, label space or None) of a run folder, without TensorFlow."""
    saved = os.path.join(run_dir, CONFIG)
    if not os.path.exists(saved):
        raise UserError(f"{run_dir}: not a run folder (no {CONFIG})")
    cfg = read_config(saved)
    return cfg, get_task(cfg.task).read_assets(os.path.join(run_dir, ASSETS))


def restore_run(run_dir):
    """Rebuilds the preprocessor and the model with its best weights from a run folder."""
    cfg, space = read_run(run_dir)
    task = get_task(cfg.task)
    preprocessor = task.build_preprocessor(cfg, task.load_tokenizer(os.path.join(run_dir, ASSETS)))
    model = task.build_model(cfg, preprocessor, space)
    for name in (BEST_WEIGHTS, LAST_WEIGHTS):
        path = os.path.join(run_dir, CHECKPOINTS, name)
        if os.path.exists(path):
            try:
                model.load_weights(path)
            except (OSError, ValueError) as exc:
                raise UserError(f"{path}: cannot load these weights into the run's model "
                                f"({str(exc).splitlines()[0][:200]})") from None
            break
    else:
        raise UserError(f"{run_dir}: no checkpoint yet ({CHECKPOINTS}/{BEST_WEIGHTS}); train it first")
    return RestoredRun(cfg, preprocessor, model, space)


def _effective_data(cfg):
    """The run's data settings with the seed that drew its holdout written in (None when it
    holds nothing out)."""
    data = config_lib.config_to_dict(cfg)["data"]
    if not (cfg.data.holdout_fraction or cfg.data.cv_folds):
        data["holdout_seed"] = None
    elif cfg.data.holdout_seed is None:
        data["holdout_seed"] = cfg.train.seed
    return data


def _data_and_tokenizer(cfg):
    """What members must share: the data settings (holdout seed resolved) and the tokenizer's."""
    return {"data": _effective_data(cfg),
            "tokenizer": config_lib.config_to_dict(cfg)["tokenizer"]}


def _same_files(folder, other):
    """Whether two folders hold the same file names with the same bytes."""
    def listing(root):
        return sorted(os.path.relpath(os.path.join(top, name), root)
                      for top, _, names in os.walk(root) for name in names)

    names = listing(folder)
    return names == listing(other) and all(
        filecmp.cmp(os.path.join(folder, n), os.path.join(other, n), shallow=False) for n in names)


def _check_members(run_dirs, configs):
    """Refuses runs that cannot be averaged into one model: another task or one that does not
    ensemble, a backbone or an ensemble, or other data, holdout, tokenizer or assets."""
    first, first_cfg = run_dirs[0], configs[0]
    task = get_task(first_cfg.task)
    if not task.ensembles:
        raise UserError(f"{first}: task {first_cfg.task} runs cannot be ensembled (classification "
                        f"and relation runs can)")
    first_shared = _data_and_tokenizer(first_cfg)
    for run_dir, cfg in zip(run_dirs, configs):
        if cfg.model.backbone or cfg.model.name == "ensemble_classifier":
            raise UserError(f"{run_dir}: a member is one model without model.backbone, not "
                            f"{cfg.model.backbone or 'an ensemble'}")
        if cfg.task != first_cfg.task:
            raise UserError(f"{run_dir}: task {cfg.task}, but {first} is task {first_cfg.task}")
        shared = _data_and_tokenizer(cfg)
        for section in ("data", "tokenizer"):
            mine, theirs = shared[section], first_shared[section]
            differing = sorted(k for k in mine if mine[k] != theirs.get(k))
            if differing:
                key = differing[0]
                hint = " (give the runs one data.holdout_seed)" if key == "holdout_seed" else ""
                raise UserError(f"{run_dir}: {section}.{key} is {mine[key]!r}, but {first} has "
                                f"{theirs.get(key)!r}; members must read the same data, hold out "
                                f"the same examples and tokenize alike{hint}")
        if not _same_files(os.path.join(run_dir, ASSETS), os.path.join(first, ASSETS)):
            raise UserError(f"{run_dir}: its {ASSETS}/ (vocabulary, labels) differ from {first}'s")


def write_ensemble(run_dirs, output):
    """One run folder whose model averages the class probabilities of trained runs (an
    `ensemble_classifier` holding each run's model and best weights) and whose metrics.json
    scores the average on the members' shared validation data. Returns `output`.

    The members must be runs of one classification or relation config that differ in what
    does not change the data seen (train.seed, the model and its settings): the same data,
    holdout (`data.holdout_seed`), tokenizer settings and assets. `output` must not exist; it
    appears whole or not at all.
    """
    import keras

    from keras_nlp_app.utils import atomic

    if len(run_dirs) < 2 or len({os.path.realpath(d) for d in run_dirs}) < len(run_dirs):
        raise UserError("an ensemble needs two or more different run folders")
    if os.path.exists(output):
        raise UserError(f"{output} exists; the ensemble is written to a new folder")
    configs = [read_run(run_dir)[0] for run_dir in run_dirs]
    _check_members(run_dirs, configs)
    members = [restore_run(run_dir) for run_dir in run_dirs]
    cfg = dataclasses.replace(configs[0])
    cfg.data = dataclasses.replace(configs[0].data, holdout_seed=_effective_data(configs[0])[
        "holdout_seed"])
    cfg.model = dataclasses.replace(configs[0].model, name="ensemble_classifier", params={
        "members": [{"name": c.model.name, "params": dict(c.model.params)} for c in configs]})
    first, task = members[0], get_task(cfg.task)
    model = task.build_model(cfg, first.preprocessor, first.space)
    parts = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    for part, member, run_dir in zip(parts, members, run_dirs):
        try:
            part.set_weights(member.model.get_weights())
        except ValueError as exc:
            raise UserError(f"{run_dir}: its weights do not fit its config's model "
                            f"({str(exc).splitlines()[0][:200]})") from None
    _, validation = task.load_splits(cfg.data, cfg.train.seed)
    with atomic.atomic_folder(output) as staging:
        config_lib.dump_config(cfg, os.path.join(staging, CONFIG))
        shutil.copytree(os.path.join(run_dirs[0], ASSETS), os.path.join(staging, ASSETS))
        os.makedirs(os.path.join(staging, CHECKPOINTS))
        model.save_weights(os.path.join(staging, CHECKPOINTS, BEST_WEIGHTS))
        metrics = {"task": cfg.task, "ensemble_of": [os.path.abspath(d) for d in run_dirs],
                   "parameters": int(model.count_params()),
                   **task.final_metrics(cfg, first.preprocessor, model, first.space, validation,
                                        staging)}
        atomic.write_json(os.path.join(staging, METRICS), metrics)
    return output
