"""`knlp`: the command line, one module per verb group; each verb parses its flags and calls one
importable function.

TensorFlow is imported only inside the verbs that need it, so `knlp --help` and the n-gram verbs
answer at once; its C++ start-up lines are kept off stderr unless `-v` (utils/native_logs.py).
Exit codes: 0 success, 2 bad usage or bad input (one line on stderr), 1 internal error.
"""

import argparse
import logging
import os
import sys

from keras_nlp_app import __version__
from keras_nlp_app.cli import datasets, inspect, ngram, predict, rescore, serve, train, vocab
from keras_nlp_app.errors import UserError

VERB_GROUPS = (train, ngram, predict, inspect, rescore, serve, vocab, datasets)


def _quiet_tensorflow():
    import warnings

    from keras_nlp_app.utils.native_logs import hide_native_logs

    hide_native_logs()
    warnings.filterwarnings("ignore", message=r".*input ran out of data.*")
    logging.getLogger("absl").setLevel(logging.ERROR)


def build_parser():
    parser = argparse.ArgumentParser(
        prog="knlp", description="Train, evaluate, export and serve NLP models (TensorFlow/Keras).")
    parser.add_argument("--version", action="version", version=f"keras_nlp_app {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="show TensorFlow's logs")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True
    for group in VERB_GROUPS:
        group.add_parsers(verbs)
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
