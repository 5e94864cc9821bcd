"""`knlp vocab`: learn a WordPiece, SentencePiece (unigram or BPE), word or character vocabulary;
`knlp vectors`: learn skip-gram word vectors that `model.word_vectors` can name."""

import json


def cmd_vocab(args):
    from keras_nlp_app.data.vocabularies import learn_vocabulary

    print(json.dumps(learn_vocabulary(
        args.files, args.output, kind=args.kind, vocab_size=args.vocab_size,
        model_type=args.model_type, min_count=args.min_count, lowercase=not args.cased,
        text_field=args.text_field, max_texts=args.max_texts)))
    return 0


def _source_texts(source, text_field):
    """The texts of a file, or the training text of a registry dataset (as pretraining reads it:
    DailyDialog's turns, SQuAD's paragraphs, ...)."""
    import os

    from keras_nlp_app.data import corpus, datasets
    from keras_nlp_app.data.vocabularies import read_texts

    if os.path.exists(source) or source not in datasets.DATASETS:
        return read_texts(source, text_field)
    return corpus.dataset_documents(source)


def cmd_vectors(args):
    from keras_nlp_app.data.word_vectors import check_settings, learn_word_vectors

    check_settings(args.dim, args.epochs, args.window, args.min_count)
    texts = []
    for source in args.sources:
        texts += _source_texts(source, args.text_field)
        if args.max_texts and len(texts) >= args.max_texts:
            texts = texts[:args.max_texts]
            break
    print(json.dumps(learn_word_vectors(
        texts, args.output, sources=args.sources,
        dim=args.dim, epochs=args.epochs, window=args.window, min_count=args.min_count,
        lowercase=not args.cased, seed=args.seed)))
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

    p = verbs.add_parser("vectors", help="learn skip-gram word vectors from text (a file that "
                                         "model.word_vectors can name)")
    p.add_argument("sources", nargs="+", help="text files (.txt: a text per line; .jsonl/.tsv/.csv) "
                                              "or registry datasets (their training text)")
    p.add_argument("--output", required=True, help="file to write (word2vec text format)")
    p.add_argument("--dim", type=int, default=100, help="numbers per vector: the embedding width")
    p.add_argument("--epochs", type=int, default=5, help="passes over the text")
    p.add_argument("--window", type=int, default=5, help="context words on each side")
    p.add_argument("--min-count", type=int, default=3, help="drop rarer words")
    p.add_argument("--cased", action="store_true", help="keep case (default: Unicode case folding)")
    p.add_argument("--text-field", default="text", help="jsonl key or tsv/csv column of the text")
    p.add_argument("--max-texts", type=int, help="learn from the first N texts only")
    p.add_argument("--seed", type=int, default=1, help="gensim's seed (its threads still vary)")
    p.set_defaults(func=cmd_vectors)
