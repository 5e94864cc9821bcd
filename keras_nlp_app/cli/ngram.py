"""`knlp ngram train | score | generate | to-arpa | from-arpa`: count-based LMs, no TensorFlow."""

import json

from keras_nlp_app.errors import UserError


def _print_score(report):
    print(f"sentences: {report['sentences']}  tokens: {report['tokens']}  OOV: {report['oov']}")
    print(f"log10 prob: {report['log10_prob']:.4f}")
    print(f"perplexity: {report['perplexity']:.4f}  (excluding OOVs: "
          f"{report['perplexity_excluding_oov']:.4f})")
    if report["zero_prob"]:
        print(f"zero-probability tokens: {report['zero_prob']} (perplexity is infinite)")
    if not report["normalized"]:
        print("note: stupid backoff gives scores, not probabilities; use this perplexity "
              "to rank, not to compare with normalized models")


def cmd_ngram(args):
    from keras_nlp_app.ngram import arpa
    from keras_nlp_app.ngram.io import (
        load_model,
        model_path,
        read_encoded,
        save_model,
        train_files,
    )
    from keras_nlp_app.ngram.model import perplexity_report

    if args.action == "train":
        if args.discount_fallback is not None and len(args.discount_fallback) not in (0, 3):
            raise UserError("--discount-fallback takes three values: D1 D2 D3+")
        fallback = [0.5, 1.0, 1.5] if args.discount_fallback == [] else args.discount_fallback
        print(json.dumps(train_files(
            args.train_file, args.output, order=args.order, smoothing=args.smoothing, k=args.k,
            min_count=args.min_count, max_vocab=args.max_vocab, tokenizer=args.tokenizer,
            discount_fallback=fallback, alpha=args.alpha, write_arpa_file=args.arpa)))
        return 0
    if args.action == "score":
        model = load_model(model_path(args.model))
        sentences = read_encoded(args.data, model)
        report = perplexity_report(model, sentences, include_eos=not args.no_eos)
        if args.per_sentence:
            report["per_sentence"] = model.sentence_scores(sentences)
        if args.json:
            print(json.dumps(report))
        else:
            _print_score(report)
        return 0
    if args.action == "generate":
        model = load_model(model_path(args.model))
        for i in range(args.num):
            text = model.generate(prompt=args.prompt, max_tokens=args.max_tokens,
                                  temperature=args.temperature, top_k=args.top_k, seed=args.seed + i)
            print(" ".join(part for part in (args.prompt.strip(), text) if part))
        return 0
    if args.action == "to-arpa":
        arpa.write_arpa(load_model(model_path(args.model)), args.output)
        print(f"wrote {args.output}")
        return 0
    model = arpa.read_arpa(args.model)
    output = args.output if args.output.endswith(".npz") else args.output + ".npz"
    save_model(model, output)
    print(f"wrote {output}")
    return 0


def add_parsers(verbs):
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
    q.add_argument("--output", required=True, help="PATH: writes PATH.npz (and PATH.arpa with --arpa)")
    q.add_argument("--arpa", action="store_true",
                   help="also write PATH.arpa (Kneser-Ney only), the text format KenLM and SRILM "
                        "read; it takes about twice the estimation's time (knlp ngram to-arpa "
                        "writes one later)")
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

