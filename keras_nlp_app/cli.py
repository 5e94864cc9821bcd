"""`knlp`: the command line. Each verb parses its flags and calls one importable function.

TensorFlow is imported only inside the verbs that need it, so `knlp --help` answers at once.
Exit codes: 0 success, 2 bad usage or bad input (one line on stderr), 1 internal error.
"""

import argparse
import json
import logging
import os
import sys

from keras_nlp_app import __version__
from keras_nlp_app.errors import UserError

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QUICKSTART_SENTENCES = [
    "a gorgeous , witty , seductive movie .",
    "the plot is a dull , lifeless mess and the acting is worse .",
    "an uneven film that still has moments of real charm .",
]


def _quiet_tensorflow():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import warnings

    warnings.filterwarnings("ignore", message=r".*input ran out of data.*")
    logging.getLogger("absl").setLevel(logging.ERROR)


def find_config(path):
    """A config path as given, or relative to the project's configs/ folder."""
    for candidate in (path, os.path.join(PROJECT_ROOT, path), os.path.join(PROJECT_ROOT, "configs", path)):
        if os.path.isfile(candidate):
            return candidate
    raise UserError(f"{path}: config file not found")


def cmd_train(args):
    from keras_nlp_app.config import load_config
    from keras_nlp_app.training.train import train

    cfg = load_config([find_config(args.config)], args.set or [])
    run_dir = train(cfg, run_dir=args.run_dir)
    print(f"run folder: {run_dir}")
    with open(os.path.join(run_dir, "metrics.json"), encoding="utf-8") as f:
        print(f.read().strip())
    return 0


def _print_report(report):
    print(f"task: {report['task']}   examples: {report['examples']}")
    extra = f"   micro-F1: {report['micro_f1']:.4f}" if "micro_f1" in report else ""
    exact = " (exact match)" if report.get("multi_label") else ""
    print(f"accuracy{exact}: {report['accuracy']:.4f}   macro-F1: {report['macro_f1']:.4f}{extra}")
    labels = list(report["per_class"])
    width = max(8, *(len(l) for l in labels))
    print(f"\n{'label':<{width}} precision  recall      f1  support")
    for label, row in report["per_class"].items():
        print(f"{label:<{width}} {row['precision']:9.4f} {row['recall']:7.4f} {row['f1']:7.4f} {row['support']:8d}")
    if "confusion_matrix" not in report:
        return
    print("\nconfusion matrix (rows: true, columns: predicted)")
    print(" " * width + "".join(f"{l[:8]:>9}" for l in labels))
    for label, row in zip(labels, report["confusion_matrix"]):
        print(f"{label:<{width}}" + "".join(f"{v:>9d}" for v in row))


def cmd_evaluate(args):
    from keras_nlp_app.inference import evaluate

    report = evaluate(args.target, data=args.data, split=args.split)
    if args.json:
        print(json.dumps(report))
    else:
        _print_report(report)
    return 0


def cmd_export(args):
    from keras_nlp_app.export.saved_model import export_run

    output = args.output or os.path.join("saved_models", os.path.basename(os.path.normpath(args.run_dir)))
    print(f"exported: {export_run(args.run_dir, output)}")
    return 0


def _read_inputs(path, predictor):
    from keras_nlp_app.data import readers

    suffix = os.path.splitext(path)[1].lower()
    if suffix in (".tsv", ".csv", ".jsonl"):
        data_cfg = predictor.run_config.data
        return readers.read_examples(path, text_field=data_cfg.text_field, label_field=None,
                                     header=data_cfg.header, columns=data_cfg.columns or None).texts
    return readers.read_examples(path, fmt="txt", label_field=None).texts


def predict_texts(model, texts):
    """Predictions for raw texts as JSON-ready dicts."""
    from keras_nlp_app.inference import load_predictor

    predictor = load_predictor(model)
    outputs = predictor.predict(list(texts))
    results = []
    for i, text in enumerate(texts):
        result = {
            "text": text,
            "label": _text(outputs["label"][i]),
            "class_id": int(outputs["class_id"][i]),
            "probabilities": {l: round(float(p), 6)
                              for l, p in zip(predictor.labels, outputs["probabilities"][i])},
            "top_k": [{"label": _text(l), "probability": round(float(p), 6)} for l, p in
                      zip(outputs["top_k_labels"][i], outputs["top_k_probabilities"][i])],
        }
        if "labels" in outputs:
            result["labels"] = [_text(l) for l in outputs["labels"][i] if l]
        results.append(result)
    return results


def _text(value):
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def cmd_predict(args):
    texts = list(args.texts)
    if args.input:
        from keras_nlp_app.inference import load_predictor

        texts += _read_inputs(args.input, load_predictor(args.model))
    if not texts:
        raise UserError("give texts to classify as arguments or with --input FILE")
    results = predict_texts(args.model, texts)
    if args.json:
        print(json.dumps({"predictions": results}, ensure_ascii=False))
    else:
        for r in results:
            if "labels" in r:
                chosen = ",".join(r["labels"]) or "(none)"
                print(f"{chosen}\t{r['text']}")
            else:
                print(f"{r['label']}\t{max(r['probabilities'].values()):.3f}\t{r['text']}")
    return 0


def cmd_datasets(args):
    from keras_nlp_app.data import datasets

    if args.action == "list":
        for name, dataset in sorted(datasets.DATASETS.items()):
            print(f"{name:<16} {dataset.task:<15} {dataset.description}")
        return 0
    if not args.name:
        raise UserError(f"knlp datasets {args.action} needs a dataset name")
    if args.action == "info":
        print(json.dumps(datasets.describe(args.name), indent=2))
    else:
        for split, paths in datasets.fetch(args.name).items():
            print(f"{split}: {', '.join(paths)}")
    return 0


def cmd_quickstart(args):
    """Train the SST-2 LSTM recipe, evaluate on dev, export, predict three sentences."""
    import time

    from keras_nlp_app.config import load_config
    from keras_nlp_app.export.saved_model import export_run
    from keras_nlp_app.inference import evaluate
    from keras_nlp_app.training.train import train

    started = time.time()
    cfg = load_config([find_config("configs/sst2_lstm.yaml")], args.set or [])
    print(f"== training {cfg.model.name} on {cfg.data.dataset} ({cfg.train.epochs} epochs)")
    run_dir = train(cfg, run_dir=args.run_dir)
    report = evaluate(run_dir, split="validation")
    print(f"== SST-2 dev: accuracy {report['accuracy']:.4f}, macro-F1 {report['macro_f1']:.4f} "
          f"({report['examples']} sentences)")
    version_dir = export_run(run_dir, args.output)
    print(f"== exported SavedModel: {version_dir}")
    for r in predict_texts(version_dir, QUICKSTART_SENTENCES):
        print(f"   {r['label']}  p={max(r['probabilities'].values()):.3f}  {r['text']}")
    print(f"== TensorBoard: tensorboard --logdir {os.path.join(run_dir, 'logs')}")
    print(json.dumps({"run_dir": run_dir, "saved_model": version_dir, "accuracy": report["accuracy"],
                      "macro_f1": report["macro_f1"], "wall_seconds": round(time.time() - started, 1)}))
    return 0


def build_parser():
    parser = argparse.ArgumentParser(
        prog="knlp", description="Train, evaluate, export and serve NLP models (TensorFlow/Keras).")
    parser.add_argument("--version", action="version", version=f"keras_nlp_app {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="show TensorFlow's logs")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True

    p = verbs.add_parser("quickstart", help="train, evaluate, export and try the SST-2 sentiment model")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="config override, repeatable")
    p.add_argument("--run-dir", help="run folder (default runs/sst2_lstm)")
    p.add_argument("--output", default="saved_models/sentiment", help="export folder (gets <N>/)")
    p.set_defaults(func=cmd_quickstart)

    p = verbs.add_parser("train", help="train a model from a YAML config")
    p.add_argument("config", help="YAML recipe, e.g. configs/sst2_lstm.yaml")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override, e.g. train.epochs=5")
    p.add_argument("--run-dir", help="run folder (default runs/<name>); the same folder resumes")
    p.set_defaults(func=cmd_train)

    p = verbs.add_parser("evaluate", help="score a run folder or SavedModel on labelled data")
    p.add_argument("target", help="run folder, SavedModel version folder or its parent")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--data", help="labelled file (tsv, csv, jsonl)")
    source.add_argument("--split", choices=["train", "validation"],
                        help="a split of the run's data config (default: validation)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_evaluate)

    p = verbs.add_parser("export", help="export a run as a versioned SavedModel (raw strings in)")
    p.add_argument("run_dir")
    p.add_argument("--output", help="model folder; the export goes to <output>/<N>/")
    p.set_defaults(func=cmd_export)

    p = verbs.add_parser("predict", help="classify texts with a run folder or SavedModel")
    p.add_argument("model")
    p.add_argument("texts", nargs="*", help="texts to classify")
    p.add_argument("--input", help="file of texts: one per line, or tsv/csv/jsonl")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_predict)

    p = verbs.add_parser("datasets", help="list, inspect or fetch registered datasets")
    p.add_argument("action", choices=["list", "info", "fetch"])
    p.add_argument("name", nargs="?")
    p.set_defaults(func=cmd_datasets)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    if not args.verbose:
        _quiet_tensorflow()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    logging.getLogger("keras_nlp_app").setLevel(logging.INFO)
    try:
        return args.func(args)
    except UserError as exc:
        print(f"knlp: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("knlp: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # an internal error: say so in one line, traceback on request
        if os.environ.get("KNLP_DEBUG"):
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        print(f"knlp: internal error: {type(exc).__name__}: {first} "
              f"(set KNLP_DEBUG=1 for the traceback)", file=sys.stderr)
        return 1
