"""`knlp predict | generate | chat`: use a run folder or a SavedModel."""

import json
import sys

from keras_nlp_app.cli.common import add_decoding_arguments, generation_settings
from keras_nlp_app.errors import UserError


def cmd_predict(args):
    from keras_nlp_app.inference import describe, predict

    target = describe(args.model)  # no TensorFlow yet: bad input is refused quickly
    task = target.task_hooks
    names = task.signature_inputs
    inputs = {name: [] for name in names}
    if args.texts:
        for name, column in task.inputs_from_texts(args.model, list(args.texts)).items():
            inputs[name] += column
    named = {name: getattr(args, name, None) or [] for name in _named_inputs()}
    for name, values in named.items():
        if values and name not in names:
            raise UserError(f"{args.model} takes {', '.join(names)}, not --{name}")
        if values:
            inputs[name] += values
    if len({len(column) for column in inputs.values()}) > 1:
        raise UserError(f"give {' and '.join('--' + n for n in names)} the same number of times")
    if args.input:
        for name, column in task.read_inputs(args.input, target.run_config).items():
            inputs[name] += column
    if not inputs[names[0]]:
        raise UserError("give texts as arguments or with --input FILE")
    if args.n_best:
        records = task.n_best(target, inputs[names[0]])
    else:
        records = predict(target, inputs)
    if args.json:
        print(json.dumps({"predictions": records}, ensure_ascii=False))
    else:
        for record in records:
            print(task.format_prediction(record))
    return 0


def cmd_generate(args):
    from keras_nlp_app.inference import describe, generate

    target = describe(args.model)  # generate() refuses a task that does not generate, before TF
    prompts = args.prompt or [""]
    prompts = [p.encode("utf-8").decode("unicode_escape") if args.escapes else p for p in prompts]
    texts = generate(target, prompts, condition=args.condition, max_new_tokens=args.max_new_tokens,
                     **generation_settings(args))
    if args.json:
        print(json.dumps({"generations": [{"prompt": p, "continuation": t}
                                          for p, t in zip(prompts, texts)]}, ensure_ascii=False))
    else:
        for prompt, text in zip(prompts, texts):
            print(target.task_hooks.format_generation(prompt, text, target.run_config))
    return 0


def cmd_chat(args):
    from keras_nlp_app.inference import chat, describe
    from keras_nlp_app.rulebot import load_rules

    rules_file = args.rules
    model = args.model
    if model.endswith((".yaml", ".yml")):  # a rules file alone: a rule-based bot
        rules_file, model = model, None
    rules = load_rules(rules_file) if rules_file else None
    target = describe(model) if model else None  # chat() refuses a model that does not converse
    if sys.stdin.isatty():
        print("Type a message and press Enter; /reset starts over, Ctrl-D ends.", file=sys.stderr)
    chat(target, sys.stdin, context_turns=args.context_turns, rules=rules,
         **generation_settings(args))
    return 0


def _named_inputs():
    """Signature inputs of the registered tasks besides `text` (e.g. qa's question and
    context): `knlp predict` takes each as a repeatable `--NAME VALUE` option."""
    from keras_nlp_app.tasks import TASKS

    names = {name for task in TASKS.values() for name in task.option_inputs}
    return sorted(names - {"text"})


def add_parsers(verbs):
    p = verbs.add_parser("predict", help="classify, translate, tag entities or (with a language "
                                         "model) score texts")
    p.add_argument("model")
    p.add_argument("texts", nargs="*", help="texts to classify")
    p.add_argument("--input", help="file of texts: one per line, or tsv/csv/jsonl (qa: jsonl "
                                   "with question and context, or SQuAD json)")
    for name in _named_inputs():
        p.add_argument(f"--{name}", action="append",
                       help=f"the {name} input of models that take one (repeat for a batch)")
    p.add_argument("--n-best", action="store_true",
                   help="seq2seq run folder: every beam with its length-normalized log-prob")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_predict)

    p = verbs.add_parser("generate", help="continue prompts with a language model, or decode "
                                          "sources with a seq2seq model (with any strategy)")
    p.add_argument("model", help="LM or seq2seq run folder, SavedModel version folder or its parent")
    p.add_argument("--prompt", action="append",
                   help="prompt (a source text for seq2seq); repeat for a batch (default: empty)")
    p.add_argument("--max-new-tokens", type=int, default=64,
                   help="language models; seq2seq outputs end at the trained target length")
    add_decoding_arguments(p, default_strategy="sample", default_beam=4)
    p.add_argument("--condition", help="a conditioned LM's condition (e.g. positive): every text "
                                       "starts under it (data.condition_field)")
    p.add_argument("--escapes", action="store_true", help="read \\n and \\t in prompts as escapes")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_generate)

    p = verbs.add_parser("chat", help="talk with a dialogue model or a rule-based bot "
                                      "(one turn per input line)")
    p.add_argument("model", help="dialogue run folder or SavedModel, or a rules YAML file")
    p.add_argument("--rules", help="rules YAML answered first; the model answers what no rule "
                                   "matches (a hybrid bot)")
    p.add_argument("--context-turns", type=int, help="turns of history per reply (default: as trained)")
    add_decoding_arguments(p, default_strategy="beam", default_beam=None)
    p.set_defaults(func=cmd_chat)
