"""`knlp serve`: SavedModels over the TF Serving REST API."""

from keras_nlp_app.errors import UserError


def cmd_serve(args):
    from keras_nlp_app.serving.app import parse_model_arguments, serve
    from keras_nlp_app.serving.models import parse_version_policy
    from keras_nlp_app.serving.requests import Limits

    if args.max_batch_size < 1 or args.batch_timeout_ms < 0 or args.max_body_bytes < 1:
        raise UserError("--max-batch-size and --max-body-bytes must be positive and "
                        "--batch-timeout-ms not negative")
    if args.poll_seconds < 0 or args.body_timeout_s <= 0:
        raise UserError("--poll-seconds must be 0 (no polling) or more and --body-timeout-s "
                        "positive")
    policy = parse_version_policy(args.version_policy)
    models = parse_model_arguments(args.models)
    limits = Limits(max_body_bytes=args.max_body_bytes, max_instances=args.max_instances,
                    max_batch_size=args.max_batch_size,
                    batch_timeout_s=args.batch_timeout_ms / 1000, batching=not args.no_batching,
                    body_timeout_s=args.body_timeout_s)
    serve(models, host=args.host, port=args.port, limits=limits, version_policy=policy,
          poll_seconds=args.poll_seconds)
    return 0


def add_parsers(verbs):
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
    p.add_argument("--version-policy", default="latest",
                   help="versions served from each folder: latest (default), all, or numbers "
                        "such as 1,3")
    p.add_argument("--poll-seconds", type=float, default=2.0,
                   help="how often model folders are re-read for new or removed versions "
                        "(0: never)")
    p.add_argument("--max-body-bytes", type=int, default=1 << 20, help="larger request bodies get HTTP 400")
    p.add_argument("--max-instances", type=int, default=256, help="rows per request")
    p.add_argument("--body-timeout-s", type=float, default=30.0,
                   help="a request body must arrive whole within this many seconds (HTTP 408)")
    p.set_defaults(func=cmd_serve)
