"""`knlp train | tune | evaluate | ensemble | export | quickstart`: from a config to a run folder
to a SavedModel."""

import json
import os
import time

from keras_nlp_app.cli.common import find_config

QUICKSTART_SENTENCES = [
    "a gorgeous , witty , seductive movie .",
    "the plot is a dull , lifeless mess and the acting is worse .",
    "an uneven film that still has moments of real charm .",
]


def cmd_train(args):
    from keras_nlp_app.config import in_file, load_config
    from keras_nlp_app.errors import ConfigError
    from keras_nlp_app.tasks import get_task

    config_path = find_config(args.config)
    cfg = load_config([config_path], args.set or [])
    try:
        return _train(args, config_path, cfg, get_task(cfg.task))
    except ConfigError as exc:  # settings refused while training starts: point at the file
        raise in_file(exc, config_path) from None


def _train(args, config_path, cfg, task):
    from keras_nlp_app.runs import default_run_dir

    if args.workers > 1 or args.max_restarts:
        from keras_nlp_app.training.launcher import train_with_workers

        run_dir = args.run_dir or default_run_dir(cfg)
        # the chief worker prints the run folder and its metrics
        return train_with_workers(config_path, args.set or [], run_dir, args.workers,
                                  args.max_restarts)
    from keras_nlp_app.training.train import train

    print_run(train(cfg, run_dir=args.run_dir, task=task))
    return 0


def print_run(run_dir):
    """The run folder and its metrics.json (without the per-epoch history) on stdout."""
    metrics = os.path.join(run_dir, "metrics.json")
    if not os.path.exists(metrics):  # a multi-worker job's other workers: the chief reports
        return
    print(f"run folder: {run_dir}")
    with open(metrics, encoding="utf-8") as f:
        report = json.load(f)
    report.pop("history", None)  # per-epoch logs: in the file and in TensorBoard
    print(json.dumps(report, indent=2))


def cmd_tune(args):
    from keras_nlp_app.config import in_file, load_config
    from keras_nlp_app.errors import ConfigError
    from keras_nlp_app.training.tune import tune

    config_path = find_config(args.config)
    cfg = load_config([config_path], args.set or [])
    study_dir = args.study_dir or os.path.join("runs", f"{cfg.name}-tune")
    try:
        summary = tune(cfg, study_dir, args.trials)
    except ConfigError as exc:
        raise in_file(exc, config_path) from None
    print(json.dumps(summary, indent=None if args.json else 2))
    return 0


def cmd_evaluate(args):
    from keras_nlp_app.inference import describe, evaluate

    target = describe(args.target)
    report = evaluate(target, data=args.data, split=args.split)
    print(json.dumps(report) if args.json else target.task_hooks.format_report(report))
    return 0


def cmd_ensemble(args):
    from keras_nlp_app.runs import write_ensemble

    print_run(write_ensemble(args.runs, args.output))
    return 0


def cmd_export(args):
    name = os.path.basename(os.path.normpath(args.run_dir))
    if not os.path.isdir(args.run_dir):
        from keras_nlp_app.ngram.export import export_ngram
        from keras_nlp_app.ngram.io import load_model, model_path

        path = model_path(args.run_dir)
        output = args.output or os.path.join("saved_models", os.path.splitext(name)[0])
        print(f"exported: {export_ngram(load_model(path), output, source=path)}")
        return 0
    from keras_nlp_app.export.saved_model import export_run
    from keras_nlp_app.utils.saved_models import read_metadata

    output = args.output or os.path.join("saved_models", name)
    companions = {"tagger": args.tagger} if args.tagger else None
    exported = export_run(args.run_dir, output, companions=companions)
    print(f"exported: {exported}")
    extra = read_metadata(exported)["non_core_ops"]
    print("ops outside core TensorFlow (a TF Serving build must include TensorFlow Text): "
          + (", ".join(extra) if extra else "none"))
    return 0


def cmd_quickstart(args):
    """Train the SST-2 LSTM recipe, evaluate on dev, export, predict three sentences."""
    from keras_nlp_app.config import load_config
    from keras_nlp_app.export.saved_model import export_run
    from keras_nlp_app.inference import evaluate, predict
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
    for r in predict(version_dir, {"text": QUICKSTART_SENTENCES}):
        print(f"   {r['label']}  p={max(r['probabilities'].values()):.3f}  {r['text']}")
    print(f"== TensorBoard: tensorboard --logdir {os.path.join(run_dir, 'logs')}")
    print(json.dumps({"run_dir": run_dir, "saved_model": version_dir, "accuracy": report["accuracy"],
                      "macro_f1": report["macro_f1"], "wall_seconds": round(time.time() - started, 1)}))
    return 0


def add_parsers(verbs):
    p = verbs.add_parser("quickstart", help="train, evaluate, export and try the SST-2 sentiment model")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="config override, repeatable")
    p.add_argument("--run-dir", help="run folder (default runs/sst2_lstm)")
    p.add_argument("--output", default="saved_models/sentiment", help="export folder (gets <N>/)")
    p.set_defaults(func=cmd_quickstart)

    p = verbs.add_parser("train", help="train a model from a YAML config")
    p.add_argument("config", help="YAML recipe, e.g. configs/sst2_lstm.yaml")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override, e.g. train.epochs=5")
    p.add_argument("--run-dir", help="run folder (default runs/<name>); the same folder resumes")
    p.add_argument("--workers", type=int, default=1,
                   help="train as N local processes under MultiWorkerMirroredStrategy (TF_CONFIG "
                        "on 127.0.0.1); see docs/distributed.md for several machines")
    p.add_argument("--max-restarts", type=int, default=0,
                   help="with --workers: relaunch all workers up to N times after one dies "
                        "(each relaunch resumes from the last backup)")
    p.set_defaults(func=cmd_train)

    p = verbs.add_parser("tune", help="search hyperparameters with Optuna over the config's tune: "
                                      "space (resumable)")
    p.add_argument("config", help="YAML recipe with a tune: section")
    p.add_argument("--trials", type=int, default=20, help="finished trials the study should hold")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override, e.g. train.epochs=2")
    p.add_argument("--study-dir", help="study folder (default runs/<name>-tune); the same folder "
                                       "resumes")
    p.add_argument("--json", action="store_true", help="print the summary on one line")
    p.set_defaults(func=cmd_tune)

    p = verbs.add_parser("evaluate", help="score a run folder or SavedModel on labelled data or text")
    p.add_argument("target", help="run folder, SavedModel version folder or its parent")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--data", help="labelled file (tsv, csv, jsonl); plain text for a language "
                                       "model; SRC_FILE,TGT_FILE (or tsv/jsonl) for seq2seq")
    source.add_argument("--split", choices=["train", "validation"],
                        help="a split of the run's data config (default: validation)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_evaluate)

    p = verbs.add_parser("ensemble", help="average trained classification or relation runs into "
                                          "one run folder (export, evaluate and serve it as any)")
    p.add_argument("runs", nargs="+", metavar="RUN_DIR",
                   help="two or more runs of one data config and holdout (data.holdout_seed)")
    p.add_argument("--output", required=True, help="the new run folder (must not exist)")
    p.set_defaults(func=cmd_ensemble)

    p = verbs.add_parser("export", help="export a run or an n-gram model as a versioned SavedModel")
    p.add_argument("run_dir", metavar="RUN_DIR_OR_NGRAM", help="run folder, or n-gram PATH(.npz|.arpa)")
    p.add_argument("--output", help="model folder; the export goes to <output>/<N>/")
    p.add_argument("--tagger", metavar="TAGGER_RUN",
                   help="relation runs: chain this tagging run in front, adding an `extract` "
                        "signature (raw text in, (head, relation, tail) triples out)")
    p.set_defaults(func=cmd_export)
