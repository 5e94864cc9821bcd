"""N-best rescoring: a decoder's hypotheses (translation, speech recognition) re-ranked by a
log-linear mix of its own score, their length and language-model log-probabilities.

N-best files are JSONL, one source per line:
`{"id": "7", "hypotheses": [{"text": "...", "score": -3.2}, ...], "references": ["..."]}`
(`reference` for one reference; references are optional except to tune or to score). The
language models are n-gram models (`knlp ngram train`'s `.npz`, or ARPA) and neural LMs (an `lm`
run folder or SavedModel). The combined score of a hypothesis is
`score + w_length · words + Σ w_i · ln P_i(text)`; weights are given, or tuned on a development
n-best file by a grid search for corpus BLEU (sacrebleu) or WER (jiwer).
"""

import dataclasses
import itertools
import json
import math
import os

import numpy as np

from keras_nlp_app.errors import DataError, UserError

METRICS = ("bleu", "wer")
LM_GRID = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0)  # weights tried per language model
LENGTH_GRID = (-1.0, -0.5, -0.25, 0.0, 0.25, 0.5, 1.0)  # weights tried for the word count


@dataclasses.dataclass
class NBest:
    ident: str
    texts: list
    scores: np.ndarray
    references: list  # empty when the file has none
    line: int


def read_nbest(path):
    """The n-best lists of a JSONL file; a malformed line is an error naming the file and line."""
    from keras_nlp_app.data.readers import read_text

    found = []
    for number, raw in enumerate(read_text(path).splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise DataError(f"not valid JSON ({exc.msg} at column {exc.colno})", path=path,
                            line=number) from None
        hypotheses = record.get("hypotheses") if isinstance(record, dict) else None
        if not isinstance(hypotheses, list) or not hypotheses:
            raise DataError('expected an object with a non-empty "hypotheses" list', path=path,
                            line=number)
        texts, scores = [], []
        for item in hypotheses:
            score = item.get("score") if isinstance(item, dict) else None
            if not isinstance(item, dict) or not isinstance(item.get("text"), str) \
                    or isinstance(score, bool) or not isinstance(score, (int, float)) \
                    or not math.isfinite(score):
                raise DataError(f"a hypothesis needs a string text and a finite number score, "
                                f"got {item!r}", path=path, line=number)
            texts.append(item["text"])
            scores.append(float(score))
        references = record.get("references", [record["reference"]] if "reference" in record else [])
        if not isinstance(references, list) or not all(isinstance(r, str) for r in references):
            raise DataError("references must be a list of strings", path=path, line=number)
        found.append(NBest(str(record.get("id", number)), texts, np.array(scores), references,
                           number))
    if not found:
        raise DataError("no n-best lists in file", path=path)
    return found


class LanguageModel:
    """Natural-log probabilities of whole texts from an n-gram model or a neural `lm` model."""

    def __init__(self, spec):
        from keras_nlp_app.ngram.io import load_model, model_path

        self.spec = spec
        self._ngram, self._predictor = None, None
        if spec.endswith((".npz", ".arpa")) or not os.path.isdir(spec):
            self._ngram = load_model(model_path(spec))
        else:
            from keras_nlp_app.inference import describe

            target = describe(spec)
            if target.task != "lm":
                raise UserError(f"{spec} is a {target.task} model; rescoring takes language "
                                f"models (n-gram, or task lm)")
            self._predictor = target.predictor()

    def log_probs(self, texts):
        """`[N]` ln P(text) (with the end of sentence)."""
        if self._ngram is not None:
            from keras_nlp_app.ngram.model import tokenize

            sentences = [tokenize(t, self._ngram.tokenizer) for t in texts]
            return np.array([s["ln_prob"] for s in self._ngram.sentence_scores(sentences)])
        return np.asarray(self._predictor.predict({"text": list(texts)})["log_prob"], np.float64)


def features(nbests, models):
    """Per list: `[H, 2 + L]` columns (decoder score, word count, each LM's ln P)."""
    texts = [t for n in nbests for t in n.texts]
    columns = [m.log_probs(texts) for m in models]
    found, start = [], 0
    for n in nbests:
        rows = slice(start, start + len(n.texts))
        words = np.array([len(t.split()) for t in n.texts], np.float64)
        found.append(np.column_stack([n.scores, words, *[c[rows] for c in columns]]))
        start += len(n.texts)
    return found


def choose(table, weights):
    """The index of the best hypothesis of each list under `weights` (length, then each LM's)."""
    mix = np.concatenate([[1.0], weights])
    return [int(np.argmax(f @ mix)) for f in table]


def corpus_score(metric, hypotheses, references):
    """Corpus BLEU (sacrebleu, several references allowed) or WER in percent (jiwer, against
    the first reference)."""
    if metric == "bleu":
        import sacrebleu

        width = max(len(r) for r in references)
        streams = [[r[i] if i < len(r) else r[0] for r in references] for i in range(width)]
        return sacrebleu.corpus_bleu(hypotheses, streams).score
    import jiwer

    return 100.0 * jiwer.wer([r[0] for r in references], hypotheses)


def _check_references(nbests, path):
    missing = [n for n in nbests if not n.references]
    if missing:
        raise DataError("has no references (\"references\" or \"reference\"); scoring and tuning "
                        "need them", path=path, line=missing[0].line)
    return [n.references for n in nbests]


def tune(table, references, metric, lms):
    """Weights (length, then each LM's) from the grid that give the best corpus score."""
    better = max if metric == "bleu" else min
    candidates = itertools.product(LENGTH_GRID, *[LM_GRID] * lms)
    scored = []
    for weights in candidates:
        picked = [n_texts[i] for n_texts, i in zip(table["texts"], choose(table["features"],
                                                                          np.array(weights)))]
        scored.append((corpus_score(metric, picked, references), weights))
    return list(better(scored, key=lambda s: s[0])[1])


def rescore(nbest_path, lm_specs, *, weights=None, dev_path=None, metric="bleu"):
    """Rescores `nbest_path`'s lists.

    Args:
        nbest_path: the n-best JSONL to rescore.
        lm_specs: language models (n-gram `.npz`/`.arpa`, or `lm` run folders / SavedModels).
        weights: (length weight, one weight per LM); None tunes them on `dev_path`.
        dev_path: a development n-best JSONL with references, for tuning.
        metric: bleu or wer (what tuning optimizes and the report gives).

    Returns:
        (report, picks): a JSON-ready report (weights; with references, the metric of the
        decoder's 1-best and of the rescored choice) and, per list, (id, chosen text, index).
    """
    if metric not in METRICS:
        raise UserError(f"--metric must be one of {', '.join(METRICS)}")
    nbests = read_nbest(nbest_path)
    dev = read_nbest(dev_path) if dev_path else None
    if weights is None and dev is None:
        raise UserError("give the weights (--weights LENGTH,LM1,...) or a development n-best "
                        "file to tune them on (--dev FILE)")
    if weights is not None and len(weights) != 1 + len(lm_specs):
        raise UserError(f"--weights needs {1 + len(lm_specs)} numbers: the length weight, then "
                        f"one per language model")
    models = [LanguageModel(spec) for spec in lm_specs]
    report = {"lists": len(nbests), "language_models": list(lm_specs), "metric": metric}
    if weights is None:
        dev_references = _check_references(dev, dev_path)
        table = {"features": features(dev, models), "texts": [n.texts for n in dev]}
        weights = tune(table, dev_references, metric, len(models))
        baseline = [n.texts[i] for n, i in zip(dev, choose(table["features"], np.zeros(len(weights))))]
        chosen = [n.texts[i] for n, i in zip(dev, choose(table["features"], np.array(weights)))]
        report["dev"] = {"lists": len(dev), "one_best": corpus_score(metric, baseline, dev_references),
                         "rescored": corpus_score(metric, chosen, dev_references)}
    report["weights"] = {"length": weights[0],
                         **{spec: w for spec, w in zip(lm_specs, weights[1:])}}
    table = features(nbests, models)
    picks = choose(table, np.array(weights, np.float64))
    if all(n.references for n in nbests):
        references = [n.references for n in nbests]
        decoder = choose(table, np.zeros(len(weights)))  # the decoder's own 1-best
        report["one_best"] = corpus_score(metric, [n.texts[i] for n, i in zip(nbests, decoder)],
                                          references)
        report["rescored"] = corpus_score(metric, [n.texts[i] for n, i in zip(nbests, picks)],
                                          references)
    return report, [(n.ident, n.texts[i], i) for n, i in zip(nbests, picks)]
