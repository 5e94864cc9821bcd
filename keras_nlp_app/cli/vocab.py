"""`knlp vocab`: learn a WordPiece, SentencePiece (unigram or BPE), word or character vocabulary."""

import json


def cmd_vocab(args):
    from keras_nlp_app.data.vocabularies import learn_vocabulary

    print(json.dumps(learn_vocabulary(
        args.files, args.output, kind=args.kind, vocab_size=args.vocab_size,
        model_type=args.model_type, min_count=args.min_count, lowercase=not args.cased,
        text_field=args.text_field, max_texts=args.max_texts)))
    return 0


def add_parsers(verbs):
    from keras_nlp_app.data.vocabularies import KINDS

    p = verbs.add_parser("vocab", help="learn a tokenizer vocabulary from text files (a folder "
                                       "that tokenizer.vocabulary can name)")
    p.add_argument("files", nargs="+", help="text files: .txt (a text per line), or .jsonl/.tsv/.csv")
    p.add_argument("--output", required=True, help="folder to write (tokenizer.json, vocab.txt, spm.model)")
    p.add_argument("--kind", default="wordpiece", choices=KINDS)
    p.add_argument("--model-type", default="unigram", choices=["unigram", "bpe"],
                   help="sentencepiece: unigram or byte-pair")
    p.add_argument("--vocab-size", type=int, default=8000, help="special tokens included")
    p.add_argument("--min-count", type=int, default=1, help="word kinds: drop rarer words")
    p.add_argument("--cased", action="store_true", help="keep case (default: Unicode case folding)")
    p.add_argument("--text-field", default="text", help="jsonl key or tsv/csv column of the text")
    p.add_argument("--max-texts", type=int, help="learn from the first N texts only")
    p.set_defaults(func=cmd_vocab)
