"""Naive Bayes and NBSVM against scikit-learn, side by side from one run; prints one JSON object.

For each recipe (configs/<name>.yaml: sst2_nb, imdb_nb, ag_news_nb, sst2_nbsvm): ours trained by
`knlp train` (fit = the training loop's epochs: NB's one counting pass, NBSVM's counting epoch
and training epochs; wall = the whole run: reading, vocabulary, fitting, validation) beside
scikit-learn on the same train and validation texts (fit = vectorizing + fitting):
`CountVectorizer` (unigrams + bigrams) + `MultinomialNB` / `ComplementNB` with the same
smoothing, or for NBSVM binarized counts scaled by the same log-count ratios + `LogisticRegression`
(one against the rest for more than two classes). Accuracy on the validation split with its 95%
interval, and the exported SavedModel's p50/p99 latency for one sentence.

Usage:
    KNLP_DATA_DIR=../shared/data .venv/bin/python scripts/bench_nb.py \
        [--recipes sst2_nb imdb_nb ag_news_nb sst2_nbsvm]
"""

import argparse
import json
import math
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def interval(accuracy, n):
    """The 95% normal-approximation interval of an accuracy measured on n examples."""
    half = 1.96 * math.sqrt(accuracy * (1 - accuracy) / n)
    return [round(accuracy - half, 4), round(accuracy + half, 4)]


def ours(recipe, folder):
    from keras_nlp_app.config import load_config
    from keras_nlp_app.export.saved_model import export_run
    from keras_nlp_app.training.train import train
    from scripts.bench_classify import bench_saved_model

    cfg = load_config([recipe], ["train.verbose=0"])
    started = time.perf_counter()
    run_dir = train(cfg, run_dir=os.path.join(folder, "run"))
    wall = time.perf_counter() - started
    with open(os.path.join(run_dir, "metrics.json")) as f:
        metrics = json.load(f)
    exported = export_run(run_dir, os.path.join(folder, "export"))
    latency = bench_saved_model(exported)
    return cfg, {"accuracy": round(metrics["accuracy"], 4),
                 "interval95": interval(metrics["accuracy"], metrics["examples"]),
                 "fit_seconds": round(sum(h["train_seconds"] for h in metrics["history"]), 2),
                 "wall_seconds": round(wall, 1), "batch1_p50_ms": latency["batch1_p50_ms"],
                 "batch1_p99_ms": latency["batch1_p99_ms"]}


def _nbsvm_peer(alpha):
    """NBSVM as logistic regression over ratio-scaled binarized counts (Wang & Manning 2012)."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    class NBSVM:
        def fit(self, features, labels):
            labels = np.asarray(labels)
            self.classes = np.unique(labels)
            positives = self.classes[1:] if len(self.classes) == 2 else self.classes
            self.ratios, self.models = [], []
            for positive in positives:
                inside = labels == positive
                p = np.asarray(features[inside].sum(0)).ravel() + alpha
                q = np.asarray(features[~inside].sum(0)).ravel() + alpha
                ratio = np.log(p / p.sum()) - np.log(q / q.sum())
                self.ratios.append(ratio)
                self.models.append(LogisticRegression(max_iter=1000).fit(
                    features.multiply(ratio).tocsr(), inside))
            return self

        def predict(self, features):
            scores = np.stack([m.decision_function(features.multiply(r).tocsr())
                               for r, m in zip(self.ratios, self.models)], axis=1)
            if len(self.classes) == 2:
                return self.classes[(scores[:, 0] > 0).astype(int)]
            return self.classes[scores.argmax(1)]

    return NBSVM()


def our_words(texts, cfg):
    """The texts as lists of our tokenizer's words (case-folded, punctuation kept as tokens)."""
    from keras_nlp_app.text.tokenizers import split_words

    return [[w.decode() for w in row]
            for row in split_words(list(texts), cfg.tokenizer.lowercase).to_list()]


def scikit_learn(cfg, same_tokens=False):
    """scikit-learn's vectorizer and model on our splits. `same_tokens`: over our tokenizer's
    words instead of CountVectorizer's own (which drops punctuation and one-letter words), so the
    two differ only in the model; tokenizing is then outside the timed fit."""
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.naive_bayes import ComplementNB, MultinomialNB

    from keras_nlp_app.tasks import get_task

    train, validation = get_task("classification").load_splits(cfg.data, cfg.train.seed)
    params = cfg.model.params
    alpha = params.get("alpha", 1.0)
    nbsvm = cfg.model.name == "nbsvm_classifier"
    if nbsvm:
        peer, name = _nbsvm_peer(alpha), "NBSVM-LR"
    else:
        peer = (ComplementNB if params.get("complement") else MultinomialNB)(alpha=alpha)
        name = type(peer).__name__
    train_texts, validation_texts = train.texts, validation.texts
    options = {}
    if same_tokens:
        train_texts, validation_texts = our_words(train_texts, cfg), our_words(validation_texts, cfg)
        options = {"tokenizer": lambda words: words, "preprocessor": lambda words: words,
                   "lowercase": False, "token_pattern": None}
    started = time.perf_counter()
    vectorizer = CountVectorizer(ngram_range=(1, cfg.tokenizer.ngrams), binary=nbsvm, **options)
    peer.fit(vectorizer.fit_transform(train_texts), train.labels)
    fit = time.perf_counter() - started
    predicted = peer.predict(vectorizer.transform(validation_texts))
    accuracy = sum(p == g for p, g in zip(predicted, validation.labels)) / len(validation.labels)
    return {"model": name, "accuracy": round(accuracy, 4),
            "interval95": interval(accuracy, len(validation.labels)), "fit_seconds": round(fit, 2),
            "validation_examples": len(validation.labels), "train_examples": len(train.labels)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", nargs="*",
                        default=["sst2_nb", "imdb_nb", "ag_news_nb", "sst2_nbsvm"])
    args = parser.parse_args()
    report = {}
    for name in args.recipes:
        with tempfile.TemporaryDirectory() as folder:
            cfg, mine = ours(f"configs/{name}.yaml", folder)
        peer = scikit_learn(cfg)
        same = scikit_learn(cfg, same_tokens=True)
        report[name] = {"knlp": mine, "scikit_learn": peer,
                        "scikit_learn_our_tokens": {k: same[k] for k in ("accuracy", "interval95")},
                        "accuracy_difference_same_tokens": round(mine["accuracy"] - same["accuracy"],
                                                                 4),
                        "accuracy_difference": round(mine["accuracy"] - peer["accuracy"], 4),
                        "fit_time_ratio": round(mine["fit_seconds"] / peer["fit_seconds"], 2)}
    print(json.dumps(report))


if __name__ == "__main__":
    main()
