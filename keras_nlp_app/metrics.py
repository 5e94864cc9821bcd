"""Evaluation metrics computed over a whole evaluation set (never averaged per batch)."""

import numpy as np


def confusion_matrix(true_ids, pred_ids, num_classes):
    """`[C, C]` counts; rows are true classes, columns predictions."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(true_ids), np.asarray(pred_ids)), 1)
    return matrix


def classification_report(true_ids, pred_ids, labels):
    """Accuracy, macro-F1 and per-class precision/recall/F1/support.

    Macro-F1 averages the per-class F1 over every class with support or predictions (as
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
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "per_class": {
            label: {"precision": float(precision[i]), "recall": float(recall[i]),
                    "f1": float(f1[i]), "support": int(support[i])}
            for i, label in enumerate(labels)
        },
        "confusion_matrix": matrix.tolist(),
    }
