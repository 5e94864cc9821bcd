"""One way to pick a task's train and validation examples from a data config.

Every task reads a split through `read_split` (an explicit file, or a split of a registry
dataset, through the task's `read_file` / `read_registry`), and sequence-of-examples tasks
(classification, tagging, seq2seq) share `holdout_then_cap`: a seeded holdout of train when
the config names no validation data, then train cut to its first `data.max_train_examples`
(so the validation set does not depend on the cap).
"""

import dataclasses

import numpy as np

from keras_nlp_app.config import DataConfig
from keras_nlp_app.data import datasets
from keras_nlp_app.errors import UserError

DEFAULT_DATA = DataConfig()


def read_options(data_cfg, explicit_file):
    """Reader options: the registry dataset's columns, overridden by what the config changed.

    The registry's format applies only to its own files; an explicit file's format comes from
    `data.format` or its suffix.
    """
    options = {"fmt": data_cfg.format, "text_field": data_cfg.text_field,
               "label_field": data_cfg.label_field, "header": data_cfg.header,
               "columns": data_cfg.columns or None, "on_bad_line": data_cfg.on_bad_line}
    if data_cfg.dataset:
        dataset = datasets.get_dataset(data_cfg.dataset)
        for key, value in dataset.read_options.items():
            if getattr(data_cfg, key) == getattr(DEFAULT_DATA, key):
                options[key] = value
        if data_cfg.format == "auto" and not explicit_file:
            options["fmt"] = dataset.format
    return options


def read_split(task, data_cfg, split):
    """The `train` or `validation` examples a data config names, read by `task`; None if the
    config names no such split (training data is required: a UserError)."""
    source = datasets.split_source(data_cfg, split)
    if source is None:
        return None
    kind, value = source
    if kind == "file":
        return task.read_file(value, data_cfg)
    return task.read_registry(data_cfg, value)


def subset(examples, indices):
    """The examples at `indices` (in that order), with the report's count updated; every
    per-example list (texts, labels, lines, groups, a subclass's own) is cut alike."""
    indices = list(indices)
    picked = {f.name: [getattr(examples, f.name)[i] for i in indices]
              for f in dataclasses.fields(examples) if isinstance(getattr(examples, f.name), list)}
    return dataclasses.replace(examples, **picked,
                               report=dataclasses.replace(examples.report, examples=len(indices)))


def holdout(examples, fraction, seed, fold=None):
    """Splits examples into (train, held-out) by a seeded permutation; each keeps file order.

    Examples with `groups` (e.g. the article of each SQuAD question) are split by group, so no
    group has examples on both sides: `fraction` of the groups are held out. `fold` = (i, k)
    holds out the i-th of k equal parts of the same permutation instead (k-fold
    cross-validation: the k runs together validate on every example once).
    """
    if not 0 < fraction < 1:
        raise UserError(f"data.holdout_fraction must be in (0, 1), got {fraction}")
    units = list(dict.fromkeys(examples.groups)) if examples.groups is not None \
        else range(len(examples.texts))
    order = np.random.default_rng(seed).permutation(len(units))
    if fold is not None:
        index, folds = fold
        parts = np.array_split(order, folds)
        order = np.concatenate([*parts[:index], *parts[index + 1:], parts[index]])
        cut = len(order) - len(parts[index])
    else:
        cut = int(round(len(order) * (1 - fraction)))
    if cut == 0 or cut == len(order):
        what = "groups (articles)" if examples.groups is not None else "examples"
        raise UserError(f"{examples.report.path}: too few {what} to hold out {fraction:.0%}")
    if examples.groups is None:
        return subset(examples, sorted(order[:cut])), subset(examples, sorted(order[cut:]))
    kept = {units[i] for i in order[:cut]}
    inside = [i for i, group in enumerate(examples.groups) if group in kept]
    outside = [i for i, group in enumerate(examples.groups) if group not in kept]
    return subset(examples, inside), subset(examples, outside)


def random_subset(examples, count, seed):
    """A seeded random `count` of the examples, in file order (`data.train_subset`: one point
    of a label-efficiency curve)."""
    total = len(examples.texts)
    if count < 1:
        raise UserError(f"data.train_subset must be at least 1, got {count}")
    if count > total:
        raise UserError(f"data.train_subset is {count} but {examples.report.path} has only "
                        f"{total} training examples")
    return subset(examples, sorted(np.random.default_rng(seed).choice(total, count, replace=False)))


def holdout_then_cap(train, validation, data_cfg, seed):
    """(train, validation): validation held out of train (seeded) when there is none and the
    config asks for `holdout_fraction`, then train cut to its first `max_train_examples`, then
    to a seeded random `train_subset`. `data.holdout_seed`, when set, seeds the holdout in
    place of `seed` (train.seed)."""
    seed = seed if data_cfg.holdout_seed is None else data_cfg.holdout_seed
    if validation is None and data_cfg.cv_folds:
        if not 0 <= data_cfg.cv_fold < data_cfg.cv_folds:
            raise UserError(f"data.cv_fold must be in [0, {data_cfg.cv_folds}), got "
                            f"{data_cfg.cv_fold}")
        train, validation = holdout(train, 1 / data_cfg.cv_folds, seed,
                                    fold=(data_cfg.cv_fold, data_cfg.cv_folds))
    elif validation is None and data_cfg.holdout_fraction:
        train, validation = holdout(train, data_cfg.holdout_fraction, seed)
    if data_cfg.max_train_examples:
        train = subset(train, range(min(data_cfg.max_train_examples, len(train.texts))))
    if data_cfg.train_subset:
        train = random_subset(train, data_cfg.train_subset, data_cfg.subset_seed)
    return train, validation


def load_splits(task, data_cfg, seed):
    """(train, validation or None) for a task whose examples are `readers.Examples`."""
    return holdout_then_cap(read_split(task, data_cfg, "train"),
                            read_split(task, data_cfg, "validation"), data_cfg, seed)
