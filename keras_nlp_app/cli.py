"""`knlp`: the command line. Each verb parses its flags and calls one importable function.

TensorFlow is imported only inside the verbs that need it, so `knlp --help` answers at once.
Exit codes: 0 success, 2 bad usage or bad input (one line on stderr), 1 internal error.
"""

import argparse
import json
import logging
import math
import os
import sys
import time

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
    from keras_nlp_app.training.train import default_run_dir

    config_path = find_config(args.config)
    cfg = load_config([config_path], args.set or [])
    if args.workers > 1 or args.max_restarts:
        from keras_nlp_app.training.launcher import train_with_workers

        run_dir = args.run_dir or default_run_dir(cfg)
        # the chief worker prints the run folder and its metrics
        return train_with_workers(config_path, args.set or [], run_dir, args.workers,
                                  args.max_restarts)
    from keras_nlp_app.training.train import train

    _print_run(train(cfg, run_dir=args.run_dir))
    return 0


def _print_run(run_dir):
    metrics = os.path.join(run_dir, "metrics.json")
    if not os.path.exists(metrics):  # a multi-worker job's other workers: the chief reports
        return
    print(f"run folder: {run_dir}")
    with open(metrics, encoding="utf-8") as f:
        report = json.load(f)
    report.pop("history", None)  # per-epoch logs: in the file and in TensorBoard
    print(json.dumps(report, indent=2))


def _print_report(report):
    if report["task"] == "lm":
        print(f"task: lm   tokens: {report['tokens']}   loss: {report['loss']:.4f} nats/token   "
              f"perplexity: {report['perplexity']:.3f}   ({report['context']})")
        return
    if report["task"] == "seq2seq":
        print(f"task: seq2seq   examples: {report['examples']}")
        print(f"BLEU: {report['bleu']:.2f}   chrF: {report['chrf']:.2f}   ROUGE-1/2/L: "
              f"{report['rouge1']:.2f} / {report['rouge2']:.2f} / {report['rougeL']:.2f}   "
              f"distinct-1/2: {report['distinct_1']:.3f} / {report['distinct_2']:.3f}")
        print(f"sacrebleu: {report['bleu_signature']}")
        return
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
    name = os.path.basename(os.path.normpath(args.run_dir))
    if not os.path.isdir(args.run_dir):
        from keras_nlp_app.ngram.export import export_ngram
        from keras_nlp_app.ngram.model import NGramModel

        path = _ngram_model_path(args.run_dir)
        output = args.output or os.path.join("saved_models", os.path.splitext(name)[0])
        print(f"exported: {export_ngram(NGramModel.load(path), output, source=path)}")
        return 0
    from keras_nlp_app.export.saved_model import export_run, read_metadata

    output = args.output or os.path.join("saved_models", name)
    exported = export_run(args.run_dir, output)
    print(f"exported: {exported}")
    extra = read_metadata(exported)["non_core_ops"]
    print("ops outside core TensorFlow (a TF Serving build must include TensorFlow Text): "
          + (", ".join(extra) if extra else "none"))
    return 0


def _read_inputs(path, target):
    from keras_nlp_app.data import readers

    suffix = os.path.splitext(path)[1].lower()
    if suffix in (".tsv", ".csv", ".jsonl"):
        data_cfg = target.run_config.data
        return readers.read_examples(path, text_field=data_cfg.text_field, label_field=None,
                                     header=data_cfg.header, columns=data_cfg.columns or None).texts
    return readers.read_examples(path, fmt="txt", label_field=None).texts


def n_best_texts(target, texts):
    """Every beam of a seq2seq run folder's beam search, best first, with its score."""
    if target.task != "seq2seq" or not target.is_run:
        raise UserError("--n-best needs a seq2seq run folder (a SavedModel returns the best only)")
    from keras_nlp_app.tasks.seq2seq import translate
    from keras_nlp_app.training.train import restore_run

    run = restore_run(target.path)
    lists = translate(run.model, run.preprocessor, list(texts), beam_size=run.cfg.model.beam_size,
                      length_penalty=run.cfg.model.length_penalty, n_best=True)
    return [{"text": text, "n_best": found} for text, found in zip(texts, lists)]


def predict_texts(model, texts):
    """Predictions for raw texts as JSON-ready dicts."""
    from keras_nlp_app.inference import load_predictor

    predictor = load_predictor(model)
    outputs = predictor.predict(list(texts))
    if predictor.task == "seq2seq":
        return [{"text": text, "output": _text(output)} for text, output in zip(texts, outputs["output"])]
    if predictor.task == "tagging":
        results = []
        for i, text in enumerate(texts):
            tokens = [_text(t) for t in outputs["tokens"][i] if t]
            results.append({"text": text, "entities": json.loads(_text(outputs["entities"][i])),
                            "tokens": tokens,
                            "tags": [_text(t) for t in outputs["tags"][i][:len(tokens)]]})
        return results
    if predictor.task == "lm":
        return [{"text": text, "log_prob": round(float(lp), 4), "num_tokens": int(n),
                 "perplexity": round(math.exp(-float(lp) / max(int(n), 1)), 3)}
                for text, lp, n in zip(texts, outputs["log_prob"], outputs["num_tokens"])]
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
    from keras_nlp_app.inference import describe

    target = describe(args.model)  # no TensorFlow yet: bad input is refused quickly
    texts = list(args.texts)
    if args.input:
        texts += _read_inputs(args.input, target)
    if not texts:
        raise UserError("give texts to classify as arguments or with --input FILE")
    if args.n_best:
        results = n_best_texts(target, texts)
    else:
        results = predict_texts(target, texts)
    if args.json:
        print(json.dumps({"predictions": results}, ensure_ascii=False))
    else:
        for r in results:
            if "n_best" in r:
                print("\n".join(f"{score:.4f}\t{text}" for text, score in r["n_best"]) + "\n")
            elif "output" in r:
                print(r["output"])
            elif "entities" in r:
                found = [f"{e['type']}\t{e['start']}-{e['end']}\t{e['text']}" for e in r["entities"]]
                print("\n".join(found or ["(no entities)"]) + "\n")
            elif "log_prob" in r:
                print(f"{r['log_prob']:.3f}\t{r['num_tokens']}\t{r['perplexity']:.2f}\t{r['text']}")
            elif "labels" in r:
                chosen = ",".join(r["labels"]) or "(none)"
                print(f"{chosen}\t{r['text']}")
            else:
                print(f"{r['label']}\t{max(r['probabilities'].values()):.3f}\t{r['text']}")
    return 0


def _generation_settings(args):
    return dict(strategy=args.strategy, temperature=args.temperature, top_k=args.top_k,
                top_p=args.top_p, repetition_penalty=args.repetition_penalty,
                beam_size=args.beam_size, seed=args.seed, stop=tuple(args.stop or ()))


def cmd_generate(args):
    from keras_nlp_app.inference import describe, generate

    target = describe(args.model)
    if target.task not in ("lm", "seq2seq"):
        raise UserError(f"{args.model} is a {target.task} model; generate needs a language model "
                        "or a seq2seq model")
    prompts = args.prompt or [""]
    prompts = [p.encode("utf-8").decode("unicode_escape") if args.escapes else p for p in prompts]
    texts = generate(target, prompts, max_new_tokens=args.max_new_tokens,
                     **_generation_settings(args))
    if args.json:
        print(json.dumps({"generations": [{"prompt": p, "continuation": t}
                                          for p, t in zip(prompts, texts)]}, ensure_ascii=False))
    elif target.task == "seq2seq":
        print("\n".join(texts))
    else:
        word_level = target.run_config.tokenizer.kind in ("word", "whitespace", "wordpiece")
        for prompt, text in zip(prompts, texts):
            print(f"{prompt} {text}" if word_level and prompt else prompt + text)
    return 0


def chat(target, lines, *, context_turns=None, write=print, **settings):
    """Talks with a dialogue model: every input line is a turn, answered with the model's reply,
    with the last `context_turns` turns (as in training) in the source each time. `settings`
    choose the decoding (as `inference.load_generator`; default: the model's beam search)."""
    from keras_nlp_app.data.readers import dialogue_source
    from keras_nlp_app.inference import load_generator

    settings = {"strategy": "beam", **settings}
    if settings["strategy"] == "beam":
        settings.setdefault("beam_size", target.run_config.model.beam_size)
    reply_to = load_generator(target)
    turns = context_turns or target.run_config.data.context_turns
    history = []
    for line in lines:
        line = line.strip()
        if not line:
            continue
        if line in ("/reset", "/new"):
            history = []
            write("(new conversation)")
            continue
        history.append(line)
        reply = reply_to([dialogue_source(history[-turns:])], **settings)[0]
        history.append(reply)
        write(reply)
        settings["seed"] = settings.get("seed", 0) + 1  # a new draw every turn when sampling


def cmd_chat(args):
    from keras_nlp_app.inference import describe

    target = describe(args.model)
    if target.task != "seq2seq":
        raise UserError(f"{args.model} is a {target.task} model; chat needs a dialogue (seq2seq) model")
    settings = _generation_settings(args)
    if settings["beam_size"] is None:
        settings["beam_size"] = target.run_config.model.beam_size
    if sys.stdin.isatty():
        print("Type a message and press Enter; /reset starts over, Ctrl-D ends.", file=sys.stderr)
    chat(target, sys.stdin, context_turns=args.context_turns, **settings)
    return 0


def cmd_serve(args):
    from keras_nlp_app.export.serving import Limits, parse_model_arguments, serve

    if args.max_batch_size < 1 or args.batch_timeout_ms < 0 or args.max_body_bytes < 1:
        raise UserError("--max-batch-size and --max-body-bytes must be positive and "
                        "--batch-timeout-ms not negative")
    models = parse_model_arguments(args.models)
    limits = Limits(max_body_bytes=args.max_body_bytes, max_instances=args.max_instances,
                    max_batch_size=args.max_batch_size,
                    batch_timeout_s=args.batch_timeout_ms / 1000, batching=not args.no_batching)
    serve(models, host=args.host, port=args.port, limits=limits)
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


def _ngram_model_path(path):
    """`PATH` as given, or `PATH.npz` (what `knlp ngram train --output PATH` writes)."""
    for candidate in (path, path + ".npz", path + ".arpa"):
        if os.path.isfile(candidate):
            return candidate
    raise UserError(f"{path}: no such n-gram model (.npz or .arpa)")


def cmd_ngram(args):
    from keras_nlp_app.ngram import arpa
    from keras_nlp_app.ngram.model import NGramModel, perplexity_report, read_sentences

    if args.action == "train":
        if args.discount_fallback is not None and len(args.discount_fallback) not in (0, 3):
            raise UserError("--discount-fallback takes three values: D1 D2 D3+")
        if args.discount_fallback == []:
            args.discount_fallback = [0.5, 1.0, 1.5]
        started = time.time()
        model = NGramModel.train(
            read_sentences(args.train_file, args.tokenizer), order=args.order,
            smoothing=args.smoothing, k=args.k, min_count=args.min_count,
            max_vocab=args.max_vocab, tokenizer=args.tokenizer,
            discount_fallback=args.discount_fallback, alpha=args.alpha)
        output = args.output[:-4] if args.output.endswith((".npz", ".arpa")) else args.output
        os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
        model.save(output + ".npz")
        written = [output + ".npz"]
        if model.smoothing == "kneser_ney" and not args.no_arpa:
            arpa.write_arpa(model, output + ".arpa")
            written.append(output + ".arpa")
        summary = {"order": model.order, "smoothing": model.smoothing, "vocabulary": model.vocab_size,
                   "ngrams": [len(o.keys) for o in model.orders],
                   "discounts": model.discounts, "files": written,
                   "seconds": round(time.time() - started, 2)}
        print(json.dumps(summary))
        return 0
    if args.action == "score":
        model = NGramModel.load(_ngram_model_path(args.model))
        sentences = read_sentences(args.data, model.tokenizer)
        report = perplexity_report(model, sentences, include_eos=not args.no_eos)
        if args.per_sentence:
            report["per_sentence"] = model.sentence_scores(sentences)
        if args.json:
            print(json.dumps(report))
        else:
            print(f"sentences: {report['sentences']}  tokens: {report['tokens']}  OOV: {report['oov']}")
            print(f"log10 prob: {report['log10_prob']:.4f}")
            print(f"perplexity: {report['perplexity']:.4f}  (excluding OOVs: "
                  f"{report['perplexity_excluding_oov']:.4f})")
            if report["zero_prob"]:
                print(f"zero-probability tokens: {report['zero_prob']} (perplexity is infinite)")
            if not report["normalized"]:
                print("note: stupid backoff gives scores, not probabilities; use this perplexity "
                      "to rank, not to compare with normalized models")
        return 0
    if args.action == "generate":
        model = NGramModel.load(_ngram_model_path(args.model))
        for i in range(args.num):
            text = model.generate(prompt=args.prompt, max_tokens=args.max_tokens,
                                  temperature=args.temperature, top_k=args.top_k, seed=args.seed + i)
            print(" ".join(part for part in (args.prompt.strip(), text) if part))
        return 0
    if args.action == "to-arpa":
        arpa.write_arpa(NGramModel.load(_ngram_model_path(args.model)), args.output)
        print(f"wrote {args.output}")
        return 0
    model = arpa.read_arpa(args.model)
    output = args.output if args.output.endswith(".npz") else args.output + ".npz"
    model.save(output)
    print(f"wrote {output}")
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


def _decoding_arguments(p, *, default_strategy, default_beam):
    p.add_argument("--strategy", default=default_strategy,
                   choices=["greedy", "sample", "top_k", "top_p", "beam"],
                   help=f"greedy | sample (temperature, --top-k and --top-p all apply) | beam "
                        f"(default {default_strategy})")
    p.add_argument("--temperature", type=float, default=1.0, help="0 is greedy")
    p.add_argument("--top-k", type=int, default=0, help="sample among the k best tokens (0: all)")
    p.add_argument("--top-p", type=float, default=1.0, help="nucleus: smallest set with this mass")
    p.add_argument("--repetition-penalty", type=float, default=1.0,
                   help="> 1 discourages repeats (language model run folders)")
    p.add_argument("--beam-size", type=int, default=default_beam,
                   help="default: " + (str(default_beam) if default_beam else "as trained"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--stop", action="append", help="cut the output before this string")


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
    p.add_argument("--workers", type=int, default=1,
                   help="train as N local processes under MultiWorkerMirroredStrategy (TF_CONFIG "
                        "on 127.0.0.1); see docs/distributed.md for several machines")
    p.add_argument("--max-restarts", type=int, default=0,
                   help="with --workers: relaunch all workers up to N times after one dies "
                        "(each relaunch resumes from the last backup)")
    p.set_defaults(func=cmd_train)

    p = verbs.add_parser("evaluate", help="score a run folder or SavedModel on labelled data or text")
    p.add_argument("target", help="run folder, SavedModel version folder or its parent")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--data", help="labelled file (tsv, csv, jsonl); plain text for a language "
                                       "model; SRC_FILE,TGT_FILE (or tsv/jsonl) for seq2seq")
    source.add_argument("--split", choices=["train", "validation"],
                        help="a split of the run's data config (default: validation)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_evaluate)

    p = verbs.add_parser("export", help="export a run or an n-gram model as a versioned SavedModel")
    p.add_argument("run_dir", metavar="RUN_DIR_OR_NGRAM", help="run folder, or n-gram PATH(.npz|.arpa)")
    p.add_argument("--output", help="model folder; the export goes to <output>/<N>/")
    p.set_defaults(func=cmd_export)

    p = verbs.add_parser("predict", help="classify, translate, tag entities or (with a language model) score texts")
    p.add_argument("model")
    p.add_argument("texts", nargs="*", help="texts to classify")
    p.add_argument("--input", help="file of texts: one per line, or tsv/csv/jsonl")
    p.add_argument("--n-best", action="store_true",
                   help="seq2seq run folder: every beam with its length-normalized log-prob")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_predict)

    p = verbs.add_parser("ngram", help="count-based n-gram language models (no TensorFlow)")
    ngram = p.add_subparsers(dest="action", metavar="ACTION")
    ngram.required = True
    q = ngram.add_parser("train", help="count a text file and write PATH.npz (+ PATH.arpa)")
    q.add_argument("train_file")
    q.add_argument("--order", type=int, default=5, help="1 to 6 (default 5)")
    q.add_argument("--smoothing", default="kneser_ney",
                   choices=["kneser_ney", "add_k", "mle", "stupid_backoff"])
    q.add_argument("--k", type=float, default=1.0, help="add-k constant")
    q.add_argument("--alpha", type=float, default=0.4, help="stupid-backoff factor")
    q.add_argument("--min-count", type=int, default=1, help="rarer words become <unk>")
    q.add_argument("--max-vocab", type=int, help="keep only the most frequent words")
    q.add_argument("--tokenizer", default="whitespace", choices=["whitespace", "word"])
    q.add_argument("--output", required=True, help="PATH: writes PATH.npz and, for kneser_ney, PATH.arpa")
    q.add_argument("--no-arpa", action="store_true", help="skip the ARPA file")
    q.add_argument("--discount-fallback", type=float, nargs="*", metavar="D",
                   help="Kneser-Ney D1 D2 D3+ for orders whose discounts cannot be estimated "
                        "(small corpora; default when given without values: 0.5 1 1.5)")
    q = ngram.add_parser("score", help="perplexity of a text file")
    q.add_argument("model", help="PATH.npz, PATH.arpa or PATH")
    q.add_argument("--data", required=True)
    q.add_argument("--json", action="store_true")
    q.add_argument("--no-eos", action="store_true", help="leave </s> out of the perplexity")
    q.add_argument("--per-sentence", action="store_true", help="add per-sentence log probs (JSON)")
    q = ngram.add_parser("generate", help="sample text from the model")
    q.add_argument("model")
    q.add_argument("--prompt", default="")
    q.add_argument("--max-tokens", type=int, default=30)
    q.add_argument("--temperature", type=float, default=1.0, help="0 is greedy")
    q.add_argument("--top-k", type=int, default=0)
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--num", type=int, default=1, help="samples (seeds seed, seed+1, ...)")
    q = ngram.add_parser("to-arpa", help="write a model as ARPA")
    q.add_argument("model")
    q.add_argument("output")
    q = ngram.add_parser("from-arpa", help="read an ARPA file (KenLM, SRILM) into the fast format")
    q.add_argument("model", help="the .arpa file")
    q.add_argument("output", help="PATH.npz")
    p.set_defaults(func=cmd_ngram)

    p = verbs.add_parser("generate", help="continue prompts with a language model, or decode "
                                          "sources with a seq2seq model (with any strategy)")
    p.add_argument("model", help="LM or seq2seq run folder, SavedModel version folder or its parent")
    p.add_argument("--prompt", action="append",
                   help="prompt (a source text for seq2seq); repeat for a batch (default: empty)")
    p.add_argument("--max-new-tokens", type=int, default=64,
                   help="language models; seq2seq outputs end at the trained target length")
    _decoding_arguments(p, default_strategy="sample", default_beam=4)
    p.add_argument("--escapes", action="store_true", help="read \\n and \\t in prompts as escapes")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_generate)

    p = verbs.add_parser("chat", help="talk with a dialogue model (one turn per input line)")
    p.add_argument("model", help="dialogue run folder or SavedModel")
    p.add_argument("--context-turns", type=int, help="turns of history per reply (default: as trained)")
    _decoding_arguments(p, default_strategy="beam", default_beam=None)
    p.set_defaults(func=cmd_chat)

    p = verbs.add_parser("serve", help="serve SavedModels over the TF Serving REST API")
    p.add_argument("models", nargs="+", metavar="[NAME=]MODEL_DIR",
                   help="model folder (its highest version folder is served); NAME defaults to "
                        "the folder's name")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: this machine only)")
    p.add_argument("--port", type=int, default=8501)
    p.add_argument("--max-batch-size", type=int, default=32, help="rows per batched model call")
    p.add_argument("--batch-timeout-ms", type=float, default=0.0,
                   help="how long a batch waits for more requests (default 0: a batch takes the "
                        "requests that queued while the model was busy)")
    p.add_argument("--no-batching", action="store_true", help="one model call per request")
    p.add_argument("--max-body-bytes", type=int, default=1 << 20, help="larger request bodies get HTTP 400")
    p.add_argument("--max-instances", type=int, default=256, help="rows per request")
    p.set_defaults(func=cmd_serve)

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
