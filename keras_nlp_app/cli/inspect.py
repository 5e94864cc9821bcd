"""`knlp explain | report`: why a model decided, and one page about a run."""

import json


def cmd_explain(args):
    from keras_nlp_app.inspection.explain import explain_run

    explanations, page, images = explain_run(args.model, args.texts, method=args.method,
                                             steps=args.steps, output=args.output)
    if args.json:
        print(json.dumps({"explanations": [e.to_json() for e in explanations], "page": page,
                          "images": images}, ensure_ascii=False))
        return 0
    for explanation in explanations:
        row = explanation.attributions[explanation.predicted if explanation.method != "attention" else 0]
        ranked = sorted(zip(explanation.tokens, row), key=lambda item: -abs(item[1]))[:5]
        top = ", ".join(f"{token} {value:+.3f}" for token, value in ranked)
        print(f"{explanation.text}\n  predicted {explanation.classes[explanation.predicted]}; "
              f"strongest tokens: {top}")
    print(f"page: {page}\nimages: {', '.join(images)}")
    return 0


def cmd_report(args):
    from keras_nlp_app.inspection.report import write_report

    print(write_report(args.run, args.output, evaluate=not args.no_evaluate, samples=args.samples))
    return 0


def add_parsers(verbs):
    p = verbs.add_parser("explain", help="token attributions of a classifier or tagger run for "
                                         "texts, as an HTML page and a PNG")
    p.add_argument("model", help="a run folder")
    p.add_argument("texts", nargs="+", help="texts to explain")
    p.add_argument("--method", default="integrated_gradients",
                   choices=["integrated_gradients", "attention"],
                   help="integrated gradients over the token embeddings (default), or the last "
                        "attention layer's map (Transformer models)")
    p.add_argument("--steps", type=int, default=50, help="integrated gradients: path segments")
    p.add_argument("--output", help="page path (.html); default RUN/explanations/<text>-<method>.html")
    p.add_argument("--json", action="store_true", help="print the attributions as JSON")
    p.set_defaults(func=cmd_explain)

    p = verbs.add_parser("report", help="one HTML page about a run: curves, metrics, confusion "
                                        "matrix, samples")
    p.add_argument("run", help="a run folder")
    p.add_argument("--output", help="page path; default RUN/report.html")
    p.add_argument("--samples", type=int, default=8, help="validation examples decoded")
    p.add_argument("--no-evaluate", action="store_true",
                   help="leave out the validation report and samples (no model is loaded)")
    p.set_defaults(func=cmd_report)
