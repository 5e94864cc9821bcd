"""What a run tells the tools people compare experiments with.

- Trackers (`train.tracking: [wandb, mlflow]`): the resolved config as parameters, every epoch's
  logs, the final metrics, the run folder (and later its exports) as artifacts, the git commit
  and package versions. W&B runs offline unless `WANDB_MODE` says otherwise (`wandb sync` uploads
  later); MLflow writes a local SQLite store beside the run folders unless `train.tracking_uri`
  or `MLFLOW_TRACKING_URI` names another. The tracker's run ids are kept in the run folder
  (`tracking.json`), so a resumed run and `knlp export` add to the same tracked run.
- TensorBoard: the HParams dashboard's session (so runs under one log root compare in one
  table) and the embedding projector's files for the learned token embedding.
"""

import json
import logging
import os
import subprocess
import time

from keras_nlp_app.config import config_to_dict
from keras_nlp_app.errors import ConfigError
from keras_nlp_app.utils import atomic

log = logging.getLogger("keras_nlp_app")

TRACKERS = ("wandb", "mlflow")
IDS = "tracking.json"
SKIPPED = ("backup", "wandb", "workers")  # not artifacts: resume state and the trackers' own files


def tracker_names(cfg):
    """`train.tracking` as a list, checked (names, and that their packages are installed)
    without importing them or TensorFlow."""
    import importlib.util

    names = cfg.train.tracking if isinstance(cfg.train.tracking, list) else [cfg.train.tracking]
    names = [n for n in names if n != "none"]
    for name in names:
        if name not in TRACKERS:
            raise ConfigError(f"train.tracking {name!r} is not a tracker; choose from none, "
                              f"{', '.join(TRACKERS)}", key="train.tracking")
        if importlib.util.find_spec(name) is None:
            raise ConfigError(f"train.tracking {name} needs the {name} package: "
                              f"pip install 'keras_nlp_app[track]'", key="train.tracking")
    return names


def flat_params(cfg):
    """The resolved config as `{dotted key: scalar}`; mappings (model.params) are walked into,
    lists written as JSON text."""
    flat = {}

    def walk(prefix, value):
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), inner)
        else:
            flat[prefix] = json.dumps(value) if isinstance(value, list) else value

    walk("", config_to_dict(cfg))
    return flat


def environment():
    """The git commit of the package's checkout (when it is one) and the package versions."""
    import sys

    import keras
    import tensorflow as tf

    from keras_nlp_app import __version__

    facts = {"keras_nlp_app": __version__, "tensorflow": tf.__version__, "keras": keras.__version__,
             "python": sys.version.split()[0]}
    try:
        import keras_hub

        facts["keras_hub"] = keras_hub.__version__
    except ImportError:
        pass
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    try:
        commit = subprocess.run(["git", "-C", root, "rev-parse", "HEAD"], capture_output=True,
                                text=True, timeout=10)
        if commit.returncode == 0:
            facts["git_commit"] = commit.stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        pass
    return facts


def _files(folder):
    """(path, path relative to folder) of the files worth keeping as artifacts."""
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not (root == folder and d in SKIPPED))
        for name in sorted(files):
            if not name.startswith(".tmp-"):
                path = os.path.join(root, name)
                yield path, os.path.relpath(path, folder)


class WandbTracker:
    name = "wandb"

    def __init__(self, cfg, run_dir, run_id=None):
        import wandb

        os.environ.setdefault("WANDB_MODE", "offline")
        os.environ.setdefault("WANDB_SILENT", "true")
        self._wandb = wandb
        self.run = wandb.init(project=cfg.train.tracking_project, name=cfg.name, dir=run_dir,
                              id=run_id, resume="allow" if run_id else None, tags=[cfg.task],
                              config={**flat_params(cfg), "environment": environment()},
                              settings=wandb.Settings(console="off"))
        self.id = self.run.id

    def log_epoch(self, epoch, logs):
        self.run.log({**logs, "epoch": epoch + 1}, step=epoch + 1)

    def log_files(self, folder, kind):
        artifact = self._wandb.Artifact(f"{self.run.name}-{kind}".replace("/", "-"), type=kind)
        for path, relative in _files(folder):
            artifact.add_file(path, name=relative)
        self.run.log_artifact(artifact)

    def finish(self, metrics=None, failed=False):
        if metrics:
            self.run.summary.update({f"final/{k}": v for k, v in metrics.items()})
        self.run.finish(exit_code=1 if failed else 0)


class MlflowTracker:
    name = "mlflow"

    def __init__(self, cfg, run_dir, run_id=None):
        from mlflow.tracking import MlflowClient

        root = os.path.abspath(os.path.dirname(os.path.abspath(run_dir)))
        uri = cfg.train.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
        artifacts = None
        if not uri:  # the local store: a database and an artifact folder beside the run folders
            uri, artifacts = f"sqlite:///{root}/mlflow.db", f"file://{root}/mlartifacts"
        logging.getLogger("mlflow").setLevel(logging.WARNING)
        logging.getLogger("alembic").setLevel(logging.WARNING)
        self.client = MlflowClient(uri)
        if run_id is None:
            experiment = self.client.get_experiment_by_name(cfg.train.tracking_project)
            experiment_id = (experiment.experiment_id if experiment else self.client.create_experiment(
                cfg.train.tracking_project, artifact_location=artifacts))
            facts = environment()
            run = self.client.create_run(experiment_id, run_name=cfg.name, tags={
                "task": cfg.task, "run_dir": os.path.abspath(run_dir),
                **{f"version.{k}": v for k, v in facts.items() if k != "git_commit"},
                **({"mlflow.source.git.commit": facts["git_commit"]} if "git_commit" in facts else {})})
            run_id = run.info.run_id
            from mlflow.entities import Param

            params = [Param(k, str(v)[:6000]) for k, v in flat_params(cfg).items()]
            for start in range(0, len(params), 100):
                self.client.log_batch(run_id, params=params[start:start + 100])
        else:
            self.client.update_run(run_id, status="RUNNING")
        self.id = run_id

    def _metrics(self, values, step):
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(k, float(v), now, step) for k, v in values.items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if metrics:
            self.client.log_batch(self.id, metrics=metrics)

    def log_epoch(self, epoch, logs):
        self._metrics(logs, epoch + 1)

    def log_files(self, folder, kind):
        for path, relative in _files(folder):
            self.client.log_artifact(self.id, path, artifact_path=os.path.join(
                kind, os.path.dirname(relative)) if os.path.dirname(relative) else kind)

    def finish(self, metrics=None, failed=False):
        if metrics:
            self._metrics({f"final_{k}": v for k, v in metrics.items()}, 0)
        self.client.set_terminated(self.id, status="FAILED" if failed else "FINISHED")


CLASSES = {"wandb": WandbTracker, "mlflow": MlflowTracker}


def _read_ids(run_dir):
    path = os.path.join(run_dir, IDS)
    if not os.path.exists(path):
        return {}
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def start_trackers(cfg, run_dir):
    """The trackers `train.tracking` names, each attached to this run folder's tracked run
    (a new one the first time)."""
    names = tracker_names(cfg)
    if not names:
        return []
    ids = _read_ids(run_dir)
    trackers = []
    for name in names:
        try:
            trackers.append(CLASSES[name](cfg, run_dir, ids.get(name)))
        except Exception as exc:  # a tracking server that cannot be reached, a refused login
            for started in trackers:
                _quietly(started.name, started.finish, failed=True)
            first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
            raise ConfigError(f"train.tracking {name} could not start: {first}",
                              key="train.tracking") from None
    atomic.write_json(os.path.join(run_dir, IDS), {**ids, **{t.name: t.id for t in trackers}})
    return trackers


def _quietly(name, action, *args, **kwargs):
    """Runs a tracker's action; a failure (its server went away) is logged, not raised: the
    training it watches goes on. Returns whether it worked."""
    try:
        action(*args, **kwargs)
        return True
    except Exception as exc:
        log.warning("train.tracking %s: %s: %s (training goes on)", name, type(exc).__name__,
                    str(exc).strip().splitlines()[0][:300] if str(exc).strip() else "")
        return False


def tracking_callback(trackers):
    """A Keras callback giving every epoch's logs to each tracker; a tracker that fails is
    dropped with a warning."""
    import keras

    class TrackingCallback(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            trackers[:] = [t for t in trackers
                           if _quietly(t.name, t.log_epoch, epoch, dict(logs or {}))]

    return TrackingCallback()


def finish_trackers(trackers, run_dir, metrics=None, failed=False):
    """The final metrics and the run folder to each tracker; the tracked runs are closed."""
    scalars = {k: v for k, v in (metrics or {}).items()
               if isinstance(v, (int, float)) and not isinstance(v, bool)}
    for tracker in trackers:
        if not failed:
            _quietly(tracker.name, tracker.log_files, run_dir, "run")
        _quietly(tracker.name, tracker.finish, scalars, failed=failed)


def log_export(run_dir, export_dir, cfg):
    """Adds an export to the tracked runs of its run folder (when it was tracked)."""
    ids = _read_ids(run_dir)
    if not ids:
        return
    for name in tracker_names(cfg):
        if name in ids:
            try:
                tracker = CLASSES[name](cfg, run_dir, ids[name])
            except Exception as exc:  # the export stands; the tracked run just misses it
                log.warning("train.tracking %s: the export was not recorded (%s)", name, exc)
                continue
            _quietly(name, tracker.log_files, export_dir, "export")
            _quietly(name, tracker.finish)


def write_hparams(cfg, log_dir):
    """The HParams dashboard's session for this run: its hyperparameters (scalars only)."""
    import tensorflow as tf
    from tensorboard.plugins.hparams import api as hp

    values = {k: v for k, v in flat_params(cfg).items()
              if isinstance(v, (bool, int, float, str)) and k != "name"}
    with tf.summary.create_file_writer(log_dir).as_default():
        hp.hparams(values, trial_id=cfg.name)


def write_final_metrics(cfg, log_dir, metrics):
    """The best checkpoint's metrics as `final/<name>` scalars and the HParams config naming
    them and the validation curves, so the dashboard's table shows each run's outcome."""
    import tensorflow as tf
    from tensorboard.plugins.hparams import api as hp

    scalars = {k: v for k, v in metrics.items()
               if isinstance(v, (int, float)) and not isinstance(v, bool)}
    history = metrics.get("history") or [{}]
    shown = [hp.Metric(f"final/{k}", display_name=k) for k in scalars]
    shown += [hp.Metric(f"epoch_{k[4:]}", group="validation", display_name=k)
              for k in history[-1] if k.startswith("val_")]
    with tf.summary.create_file_writer(log_dir).as_default():
        hp.hparams_config(hparams=[hp.HParam(k) for k in flat_params(cfg) if k != "name"],
                          metrics=shown)
        for key, value in scalars.items():
            tf.summary.scalar(f"final/{key}", value, step=0)


def write_projector(model, token_strings, log_dir, rows):
    """The token embedding's first `rows` vectors (the most frequent tokens) and their tokens for TensorBoard's projector
    (`projector_config.pbtxt` beside the run's event files)."""
    import keras
    import numpy as np
    from tensorboard.plugins import projector

    from keras_nlp_app.inspection.attributions import token_embedding

    matrix = np.asarray(keras.ops.convert_to_numpy(token_embedding(model).embeddings))[:rows]
    tokens = token_strings(np.arange(len(matrix)))
    folder = os.path.join(log_dir, "projector")
    with atomic.atomic_path(os.path.join(folder, "vectors.tsv")) as path:
        np.savetxt(path, matrix, fmt="%.5g", delimiter="\t")
    atomic.write_text(os.path.join(folder, "metadata.tsv"), "".join(
        (" ".join(str(t).split()) or repr(str(t))) + "\n" for t in tokens))
    config = projector.ProjectorConfig()
    embedding = config.embeddings.add()
    embedding.tensor_name = "token_embedding"
    embedding.tensor_path = "projector/vectors.tsv"
    embedding.metadata_path = "projector/metadata.tsv"
    projector.visualize_embeddings(log_dir, config)
