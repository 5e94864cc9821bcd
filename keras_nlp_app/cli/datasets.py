"""`knlp datasets list | info | fetch`: the dataset registry."""

import json

from keras_nlp_app.errors import UserError


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


def add_parsers(verbs):
    p = verbs.add_parser("datasets", help="list, inspect or fetch registered datasets")
    p.add_argument("action", choices=["list", "info", "fetch"])
    p.add_argument("name", nargs="?")
    p.set_defaults(func=cmd_datasets)
