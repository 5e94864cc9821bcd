"""Evaluation metrics computed over a whole evaluation set (never averaged per batch)."""

import numpy as np


def confusion_matrix(true_ids, pred_ids, num_classes):
    """`[C, C]` counts; rows are true classes, columns predictions."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(true_ids), np.asarray(pred_ids)), 1)
    return matrix


def classification_report(true_ids, pred_ids, labels):
    """Accuracy, balanced accuracy, macro-F1 and per-class precision/recall/F1/support.

    Balanced accuracy is the mean recall over the classes with support: the accuracy the same
    predictions would have on data whose classes were balanced, e.g. a balanced test set when
    the validation split is skewed. Macro-F1 averages the per-class F1 over every class with support or predictions (as
    scikit-learn does for labels present); a class never seen nor predicted is left out.
    """
    true_ids = np.asarray(true_ids)
    pred_ids = np.asarray(pred_ids)
    matrix = confusion_matrix(true_ids, pred_ids, len(labels))
    tp = np.diag(matrix).astype(np.float64)
    predicted = matrix.sum(axis=0).astype(np.float64)
    support = matrix.sum(axis=1).astype(np.float64)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    denominator = precision + recall
    f1 = np.divide(2 * precision * recall, denominator, out=np.zeros_like(tp), where=denominator > 0)
    present = (support + predicted) > 0
    return {
        "examples": int(len(true_ids)),
        "accuracy": float((true_ids == pred_ids).mean()) if len(true_ids) else 0.0,
        "balanced_accuracy": float(recall[support > 0].mean()) if (support > 0).any() else 0.0,
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "per_class": {
            label: {"precision": float(precision[i]), "recall": float(recall[i]),
                    "f1": float(f1[i]), "support": int(support[i])}
            for i, label in enumerate(labels)
        },
        "confusion_matrix": matrix.tolist(),
    }


def _f1(tp, fp, fn):
    denominator = 2 * tp + fp + fn
    return np.divide(2 * tp, denominator, out=np.zeros_like(tp, dtype=np.float64),
                     where=denominator > 0)


def multilabel_report(true_hot, pred_hot, labels):
    """Exact-match accuracy, macro- and micro-F1 and per-label scores for `[N, C]` 0/1 matrices."""
    true_hot = np.asarray(true_hot).astype(bool)
    pred_hot = np.asarray(pred_hot).astype(bool)
    tp = (true_hot & pred_hot).sum(axis=0).astype(np.float64)
    fp = (~true_hot & pred_hot).sum(axis=0).astype(np.float64)
    fn = (true_hot & ~pred_hot).sum(axis=0).astype(np.float64)
    precision = np.divide(tp, tp + fp, out=np.zeros_like(tp), where=(tp + fp) > 0)
    recall = np.divide(tp, tp + fn, out=np.zeros_like(tp), where=(tp + fn) > 0)
    f1 = _f1(tp, fp, fn)
    present = (tp + fp + fn) > 0
    return {
        "examples": int(len(true_hot)),
        "accuracy": float((true_hot == pred_hot).all(axis=1).mean()) if len(true_hot) else 0.0,
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "micro_f1": float(_f1(tp.sum(), fp.sum(), fn.sum())),
        "per_class": {
            label: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                    "support": int(true_hot[:, i].sum())}
            for i, label in enumerate(labels)
        },
    }


def bleu_report(hypotheses, references):
    """Corpus BLEU and chrF with sacrebleu on detokenized text (its default 13a tokenization,
    cased), with sacrebleu's signatures so scores can be compared across papers and tools."""
    import sacrebleu

    bleu = sacrebleu.metrics.BLEU()
    chrf = sacrebleu.metrics.CHRF()
    bleu_score = bleu.corpus_score(hypotheses, [references])
    chrf_score = chrf.corpus_score(hypotheses, [references])
    return {"bleu": round(bleu_score.score, 2), "chrf": round(chrf_score.score, 2),
            "bleu_signature": str(bleu.get_signature()),
            "chrf_signature": str(chrf.get_signature())}


def rouge_report(hypotheses, references):
    """ROUGE-1/2/L F-measures (rouge-score, Porter stemming), averaged over examples, × 100."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    totals = {"rouge1": 0.0, "rouge2": 0.0, "rougeL": 0.0}
    for hypothesis, reference in zip(hypotheses, references):
        for key, score in scorer.score(reference, hypothesis).items():
            totals[key] += score.fmeasure
    count = max(len(hypotheses), 1)
    return {key: round(100 * value / count, 2) for key, value in totals.items()}


def distinct_n(hypotheses, n):
    """Distinct-n (Li et al. 2016): distinct n-grams / all n-grams over all outputs."""
    grams = [tuple(words[i:i + n]) for words in (h.split() for h in hypotheses)
             for i in range(len(words) - n + 1)]
    return round(len(set(grams)) / len(grams), 4) if grams else 0.0


def entity_report(gold, predicted):
    """Entity-level precision, recall and F1 (micro) and per type, with seqeval (conlleval's
    rules), over lists of tag sequences in any of IOB1, BIO, BIOES (both are read as BIO)."""
    from seqeval.metrics import classification_report as seqeval_report

    from keras_nlp_app.text.entities import convert_tags

    gold = [convert_tags(tags, "bio") for tags in gold]
    predicted = [convert_tags(tags, "bio") for tags in predicted]
    table = seqeval_report(gold, predicted, output_dict=True, zero_division=0)
    micro = table["micro avg"]
    return {"precision": round(float(micro["precision"]), 4),
            "recall": round(float(micro["recall"]), 4),
            "f1": round(float(micro["f1-score"]), 4),
            "per_type": {kind: {"precision": round(float(row["precision"]), 4),
                                "recall": round(float(row["recall"]), 4),
                                "f1": round(float(row["f1-score"]), 4),
                                "support": int(row["support"])}
                         for kind, row in table.items() if not kind.endswith(" avg")}}


def normalize_answer(text):
    """SQuAD's answer normalization (evaluate-v1.1.py): lower case, punctuation removed, the
    articles a/an/the removed, whitespace collapsed."""
    import re
    import string

    text = "".join(ch for ch in text.lower() if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def _answer_f1(prediction, truth):
    predicted, gold = normalize_answer(prediction).split(), normalize_answer(truth).split()
    common = {}
    for token in predicted:
        common[token] = min(predicted.count(token), gold.count(token))
    overlap = sum(common.values())
    if not predicted or not gold:  # SQuAD v2.0: an empty answer matches only an empty answer
        return float(predicted == gold)
    if overlap == 0:
        return 0.0
    precision, recall = overlap / len(predicted), overlap / len(gold)
    return 2 * precision * recall / (precision + recall)


def squad_scores(prediction, references):
    """(exact match, F1) of one predicted answer against its reference answers: the maximum over
    the references, as the official script takes it; no references means "no answer" (v2.0)."""
    references = references or [""]
    exact = max(float(normalize_answer(prediction) == normalize_answer(r)) for r in references)
    return exact, max(_answer_f1(prediction, r) for r in references)


def squad_report(predictions, references):
    """The official SQuAD EM and F1 in percent over all questions; with unanswerable questions
    (an empty reference list) also the v2.0 HasAns / NoAns breakdown."""
    scores = [squad_scores(p, r) for p, r in zip(predictions, references)]
    total = max(len(scores), 1)
    report = {"exact_match": 100.0 * sum(s[0] for s in scores) / total,
              "f1": 100.0 * sum(s[1] for s in scores) / total}
    if any(not r for r in references):
        for key, keep in (("HasAns", True), ("NoAns", False)):
            part = [s for s, r in zip(scores, references) if bool(r) == keep]
            if part:
                report[f"{key}_exact"] = 100.0 * sum(s[0] for s in part) / len(part)
                report[f"{key}_f1"] = 100.0 * sum(s[1] for s in part) / len(part)
                report[f"{key}_total"] = len(part)
    return report


def relation_type(label):
    """`Cause-Effect(e2,e1)` → `Cause-Effect` (the relation without its direction)."""
    return label.split("(", 1)[0]


def semeval_report(true_ids, pred_ids, labels, other="Other"):
    """The official SemEval-2010 Task 8 score and the 19-way classification report.

    `macro_f1` is the task's official score, "(9+1)-way, direction taken into account": for
    each relation type (directions merged, `other` excluded), precision = exact predictions
    (type and direction right) / predictions of the type, recall = exact predictions / gold
    examples of the type; macro_f1 averages their F1 over the relation types of `labels`. A
    right type with the wrong direction thus costs precision and recall. `accuracy`,
    `per_class` and `confusion_matrix` are those of the directed labels.
    """
    report = classification_report(true_ids, pred_ids, labels)
    gold = [labels[i] for i in np.asarray(true_ids)]
    guess = [labels[i] for i in np.asarray(pred_ids)]
    types = sorted({relation_type(label) for label in labels} - {other})
    per_relation = {}
    for relation in types:
        exact = sum(g == p and relation_type(g) == relation for g, p in zip(gold, guess))
        predicted = sum(relation_type(p) == relation for p in guess)
        support = sum(relation_type(g) == relation for g in gold)
        precision = exact / predicted if predicted else 0.0
        recall = exact / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        wrong_direction = sum(relation_type(g) == relation == relation_type(p) and g != p
                              for g, p in zip(gold, guess))
        per_relation[relation] = {"precision": precision, "recall": recall, "f1": f1,
                                  "support": support, "wrong_direction": wrong_direction}
    return {**report, "classification_macro_f1": report["macro_f1"],
            "macro_f1": float(np.mean([r["f1"] for r in per_relation.values()])) if types else 0.0,
            "per_relation": per_relation}
