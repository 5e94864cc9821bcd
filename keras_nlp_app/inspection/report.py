"""`knlp report RUN`: one self-contained HTML page about a trained run: its training curves,
final metrics, the validation report (confusion matrix or per-type table) and decoded samples."""

import html
import json
import math
import os

import numpy as np

from keras_nlp_app import runs
from keras_nlp_app.errors import UserError
from keras_nlp_app.inspection import pages
from keras_nlp_app.utils import atomic

REPORT = "report.html"
NOT_CURVES = ("train_seconds",)


def _read_metrics(run_dir):
    path = os.path.join(run_dir, runs.METRICS)
    if not os.path.exists(path):
        raise UserError(f"{run_dir}: no {runs.METRICS} yet; the report is written for a trained run")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not JSON ({exc})") from None


def curves_png(history):
    """Per metric, its train and validation values by epoch (one panel each)."""
    names = sorted({key.removeprefix("val_") for epoch in history for key, value in epoch.items()
                    if isinstance(value, (int, float)) and key not in NOT_CURVES})
    if not names:
        return None
    plt = pages.pyplot()
    columns = min(3, len(names))
    rows = math.ceil(len(names) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3 * rows), squeeze=False)
    epochs = np.arange(1, len(history) + 1)
    for axis, name in zip(axes.flat, names):
        for key, style in ((name, "-o"), (f"val_{name}", "--s")):
            values = [epoch.get(key, np.nan) for epoch in history]
            if not np.all(np.isnan(np.asarray(values, dtype=float))):
                axis.plot(epochs, values, style, label="validation" if key.startswith("val_") else "train")
        axis.set_title(name)
        axis.set_xlabel("epoch")
        axis.legend(fontsize=8)
        axis.grid(alpha=.3)
    for axis in list(axes.flat)[len(names):]:
        axis.axis("off")
    figure.tight_layout()
    return pages.figure_png(figure)


def confusion_png(matrix, labels):
    """The confusion matrix, rows normalised (recall), with counts in the cells."""
    plt = pages.pyplot()
    matrix = np.asarray(matrix)
    shares = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    size = max(3.0, 0.6 * len(labels) + 1.5)
    figure, axis = plt.subplots(figsize=(size + 1, size))
    image = axis.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    axis.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    axis.set_yticks(range(len(labels)), labels)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    if len(labels) <= 20:
        for (i, j), count in np.ndenumerate(matrix):
            axis.text(j, i, str(int(count)), ha="center", va="center", fontsize=8,
                      color="white" if shares[i, j] > .5 else "black")
    figure.colorbar(image, ax=axis, fraction=.046)
    return pages.figure_png(figure)


def _table(rows, columns):
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_number(v))}</td>" for v in row) + "</tr>"
                   for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _number(value):
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _per_label_table(per_label):
    """A report's per-class or per-type mapping {name: {metric: value}} as a table."""
    columns = sorted({key for scores in per_label.values() for key in scores})
    return _table([[name, *(scores.get(c, "") for c in columns)] for name, scores in per_label.items()],
                  ["", *columns])


def _samples(target, count):
    """(text, gold, prediction) rows for the first validation examples, where the task takes
    one text per example."""
    from keras_nlp_app.inference import predict

    task = target.task_hooks
    examples = task.evaluation_examples(target)
    texts = getattr(examples, "texts", None)
    if texts is None or len(task.signature_inputs) != 1 or count == 0:
        return []
    texts = list(texts[:count])
    gold = getattr(examples, "labels", None)
    records = predict(target, {task.signature_inputs[0]: texts})
    return [(text, "" if gold is None else str(gold[i]), task.format_prediction(record))
            for i, (text, record) in enumerate(zip(texts, records))]


def write_report(run_dir, output=None, *, evaluate=True, samples=8):
    """Writes the run's report page (default `<run>/report.html`) and returns its path."""
    from keras_nlp_app.inference import describe

    metrics = _read_metrics(run_dir)
    cfg, _ = runs.read_run(run_dir)
    output = output or os.path.join(run_dir, REPORT)
    history = metrics.get("history") or []
    body = [f'<p class="muted">{html.escape(run_dir)} — task {html.escape(cfg.task)}, model '
            f'{html.escape(cfg.model.name)}, {len(history)} epochs</p>']
    scalars = [[k, v] for k, v in metrics.items() if isinstance(v, (int, float, str)) and k != "task"]
    body += ["<h2>Final metrics</h2>", _table(scalars, ["metric", "value"])]
    curves = curves_png(history)
    if curves:
        body += ["<h2>Training curves</h2>", pages.png_tag(curves, "training curves")]
    if evaluate:
        target = describe(run_dir)
        try:
            report = target.task_hooks.evaluate(target)
        except UserError as exc:
            body += ["<h2>Validation report</h2>", f"<p>not evaluated: {html.escape(str(exc))}</p>"]
        else:
            body += ["<h2>Validation report</h2>",
                     f"<pre>{html.escape(target.task_hooks.format_report(report))}</pre>"]
            if report.get("confusion_matrix") is not None and target.space is not None:
                body.append(pages.png_tag(confusion_png(report["confusion_matrix"],
                                                        [str(x) for x in target.space.labels]),
                                          "confusion matrix"))
            for key in ("per_class", "per_type", "per_relation"):
                if isinstance(report.get(key), dict) and report[key]:
                    body += [f"<h3>{key.replace('_', ' ')}</h3>", _per_label_table(report[key])]
            rows = _samples(target, samples)
            if rows:
                body += ["<h2>Validation samples</h2>",
                         _table(rows, ["text", "gold", "prediction"])]
    body.append("<h2>Config</h2><pre>" + html.escape(
        open(os.path.join(run_dir, runs.CONFIG), encoding="utf-8").read()) + "</pre>")
    atomic.write_text(output, pages.page(f"Run report: {cfg.name}", "\n".join(body)))
    return output
