"""What every verb group shares: finding configs and the decoding flags."""

import os

from keras_nlp_app.errors import UserError

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def find_config(path):
    """A config path as given, or relative to the project's configs/ folder."""
    for candidate in (path, os.path.join(PROJECT_ROOT, path), os.path.join(PROJECT_ROOT, "configs", path)):
        if os.path.isfile(candidate):
            return candidate
    raise UserError(f"{path}: config file not found")


def add_decoding_arguments(p, *, default_strategy, default_beam):
    """The decoding flags of `knlp generate` and `knlp chat`."""
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


def generation_settings(args):
    """The decoding flags as `inference.load_generator` settings."""
    return dict(strategy=args.strategy, temperature=args.temperature, top_k=args.top_k,
                top_p=args.top_p, repetition_penalty=args.repetition_penalty,
                beam_size=args.beam_size, seed=args.seed, stop=tuple(args.stop or ()))
