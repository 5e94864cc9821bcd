"""`knlp rescore`: re-rank n-best lists with language models (keras_nlp_app/rescoring.py)."""

import json

from keras_nlp_app.errors import UserError


def cmd_rescore(args):
    from keras_nlp_app.rescoring import rescore

    weights = None
    if args.weights:
        try:
            weights = [float(w) for w in args.weights.split(",")]
        except ValueError:
            raise UserError(f"--weights must be numbers separated by commas, got {args.weights!r}") from None
    report, picks = rescore(args.nbest, args.lm, weights=weights, dev_path=args.dev,
                            metric=args.metric)
    if args.output:
        from keras_nlp_app.utils import atomic

        with atomic.atomic_path(args.output) as tmp, open(tmp, "w", encoding="utf-8") as f:
            for ident, text, index in picks:
                f.write(json.dumps({"id": ident, "text": text, "rank": index},
                                   ensure_ascii=False) + "\n")
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
    else:
        weights = ", ".join(f"{k}: {v:g}" for k, v in report["weights"].items())
        print(f"lists: {report['lists']}   weights: {weights}")
        for part, label in (("dev", "development"), (None, "rescored file")):
            scores = report.get(part) if part else report
            if scores and "rescored" in scores:
                print(f"{label}: {args.metric} of the 1-best {scores['one_best']:.2f} -> "
                      f"rescored {scores['rescored']:.2f}")
    return 0


def add_parsers(verbs):
    p = verbs.add_parser("rescore", help="re-rank n-best lists with n-gram or neural language models")
    p.add_argument("nbest", help="n-best JSONL: {id, hypotheses: [{text, score}], references}")
    p.add_argument("--lm", action="append", required=True,
                   help="an n-gram model (.npz/.arpa) or an lm run folder / SavedModel; repeatable")
    p.add_argument("--weights", help="LENGTH,LM1[,LM2...]: fixed weights instead of tuning")
    p.add_argument("--dev", help="development n-best JSONL with references: tune the weights on it")
    p.add_argument("--metric", choices=("bleu", "wer"), default="bleu",
                   help="what tuning optimizes and the report gives")
    p.add_argument("--output", help="write the chosen hypothesis of each list as JSONL")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_rescore)
