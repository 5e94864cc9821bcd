"""Picks the tf.distribute strategy a config asks for."""

import json
import os

import tensorflow as tf

from keras_nlp_app.errors import ConfigError

_STRATEGIES = {}


def get_strategy(name="auto"):
    """Returns the strategy for `train.strategy`: one instance per kind per process.

    auto: MultiWorkerMirroredStrategy when TF_CONFIG names a cluster, MirroredStrategy with more
    than one GPU, otherwise the default one-device strategy.

    Strategies are reused: a second MirroredStrategy in the same process would number its
    collective ops from the same keys as the first and fail on the first shape mismatch, and
    MultiWorkerMirroredStrategy can only join its cluster once.
    """
    name = _resolve(name)
    if name not in _STRATEGIES:
        _STRATEGIES[name] = _create(name)
    return _STRATEGIES[name]


def _resolve(name):
    if name == "auto":
        if _tf_config_has_cluster():
            name = "multi_worker"
        elif len(tf.config.list_logical_devices("GPU")) > 1:
            name = "mirrored"
        else:
            name = "one_device"
    return name


def _create(name):
    if name == "one_device":
        gpus = tf.config.list_logical_devices("GPU")
        # On CPU, TensorFlow's default strategy: a OneDeviceStrategy pinned to "/cpu:0" trained
        # the CoNLL BiLSTM-CRF 1.5x slower per step (2.2x with its fused LSTM) than the same
        # steps under the default strategy, which is what Keras' own `fit` uses.
        return tf.distribute.OneDeviceStrategy(gpus[0].name) if gpus else tf.distribute.get_strategy()
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices=devices)
    if name == "multi_worker":
        if not _tf_config_has_cluster():
            raise ConfigError("train.strategy multi_worker needs TF_CONFIG naming the cluster")
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ConfigError(f"unknown strategy {name!r}; choose auto, one_device, mirrored or multi_worker")


def _tf_config_has_cluster():
    try:
        cluster = json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster")
    except (json.JSONDecodeError, AttributeError):
        raise ConfigError("TF_CONFIG is not a JSON object") from None
    others = sorted(set(cluster or {}) - {"chief", "worker"})
    if others:
        raise ConfigError(f"TF_CONFIG names {', '.join(others)} tasks: only chief and worker "
                          "tasks are supported (MultiWorkerMirroredStrategy; "
                          "ParameterServerStrategy is not)")
    return bool(cluster)


def is_chief(strategy):
    """True on the worker that writes checkpoints, logs and exports."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    return resolver.task_type == "chief" or (
        resolver.task_type == "worker" and resolver.task_id == 0
        and "chief" not in resolver.cluster_spec().as_dict())


def _cluster(strategy):
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return None
    return resolver


def worker_index(strategy):
    """This process's position among the cluster's workers (0 on one machine)."""
    resolver = _cluster(strategy)
    return 0 if resolver is None else int(resolver.task_id)


def worker_count(strategy):
    """Processes training together: the chief and the workers named in TF_CONFIG (1 alone)."""
    resolver = _cluster(strategy)
    if resolver is None:
        return 1
    spec = resolver.cluster_spec().as_dict()
    return sum(len(spec.get(kind, [])) for kind in ("chief", "worker"))


def _cpu_flags(path="/proc/cpuinfo"):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def native_bfloat16(*, xla, cpu_flags=None):
    """True where bfloat16 matrix products run in hardware, so that they can pay: GPUs of compute
    capability 8.0 or more (Ampere on), or, with no GPU, a CPU with AMX (`amx_bf16`), whose
    oneDNN bfloat16 products ran 5.8x float32's here. Not under XLA on CPU: XLA's CPU
    compiler does not use AMX (its bfloat16 product ran at 0.9x float32's), nor on CPUs with
    only AVX512_BF16, where Keras' casts made the Transformer recipes 1.3-1.6x slower."""
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        capabilities = [tf.config.experimental.get_device_details(gpu).get("compute_capability")
                        for gpu in gpus]
        return all(c is not None and tuple(c) >= (8, 0) for c in capabilities)
    flags = _cpu_flags() if cpu_flags is None else cpu_flags
    return "amx_bf16" in flags and not xla
