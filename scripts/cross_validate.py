"""k-fold cross-validation of a recipe on its training data; prints one JSON object.

For small datasets a single holdout of a few hundred examples moves by several points, so a
recipe tuned on it looks better than it is. This trains the recipe k times (`data.cv_folds=k`,
`data.cv_fold=i`: each run holds out another k-th of the training split, so together they
validate on every example once) and reports each fold, the mean and spread of accuracy,
balanced accuracy (mean per-class recall: the accuracy on balanced data, e.g. a balanced test
set when the training labels are skewed) and macro-F1, and the pooled accuracy over all
examples with its 95% interval.

Usage:
    KNLP_DATA_DIR=../shared/data .venv/bin/python scripts/cross_validate.py \\
        configs/ag_news.yaml --folds 5 [--set train.class_weight=balanced ...]
"""

import argparse
import json
import math
import os
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

KEYS = ("accuracy", "balanced_accuracy", "macro_f1")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()

    import numpy as np

    from keras_nlp_app.config import load_config
    from keras_nlp_app.training.train import train

    folds = []
    with tempfile.TemporaryDirectory() as folder:
        for fold in range(args.folds):
            overrides = [*args.set, "data.validation_split=null", f"data.cv_folds={args.folds}",
                         f"data.cv_fold={fold}", "train.verbose=0"]
            cfg = load_config([args.config], overrides)
            run_dir = train(cfg, run_dir=os.path.join(folder, f"fold{fold}"))
            with open(os.path.join(run_dir, "metrics.json"), encoding="utf-8") as f:
                metrics = json.load(f)
            folds.append({"examples": metrics["examples"],
                          **{k: round(metrics[k], 4) for k in KEYS if k in metrics}})
    total = sum(f["examples"] for f in folds)
    pooled = sum(f["accuracy"] * f["examples"] for f in folds) / total
    half = 1.96 * math.sqrt(pooled * (1 - pooled) / total)
    summary = {k: {"mean": round(float(np.mean([f[k] for f in folds])), 4),
                   "std": round(float(np.std([f[k] for f in folds], ddof=1)), 4)}
               for k in KEYS if all(k in f for f in folds)}
    print(json.dumps({"config": args.config, "overrides": args.set, "folds": folds,
                      "pooled_accuracy": round(pooled, 4),
                      "pooled_interval95": [round(pooled - half, 4), round(pooled + half, 4)],
                      "examples": total, **summary}))


if __name__ == "__main__":
    main()
