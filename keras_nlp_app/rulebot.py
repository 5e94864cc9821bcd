"""A rule-based dialogue engine: intents matched by regular expressions with named slots,
priorities, response templates filled from the slots, a small conversation state (contexts
that one rule sets and others require, slots remembered across turns) and a fallback.

Rules are YAML (`configs/shop_assistant_rules.yaml` is an example):

    bot: shop_assistant
    fallback: ["Sorry, I did not get that."]
    intents:
      - name: order_status
        priority: 2                       # higher wins when several intents match
        patterns: ['order (?:number |#)?(?P<order>\\d{5,})']   # re.search, case-insensitive
        requires: []                      # contexts that must be active
        sets: [order_known]               # contexts this turn activates
        clears: [awaiting_order]          # contexts this turn ends
        responses: ["Order {order} left our warehouse yesterday."]

The engine is stateless between calls if asked to be: `reply(history)` replays the user turns of
a conversation to rebuild its state and answers the last one, which is how a server that keeps
no sessions (as TF Serving keeps none) answers a request holding the conversation so far.
"""

import dataclasses
import re
import string

import yaml

from keras_nlp_app.errors import UserError

_INTENT_KEYS = {"name", "priority", "patterns", "requires", "sets", "clears", "responses"}


@dataclasses.dataclass
class Intent:
    name: str
    priority: int
    patterns: list  # compiled regular expressions
    requires: set
    sets: set
    clears: set
    responses: list
    captured: set = dataclasses.field(default_factory=set)  # slots its patterns capture


@dataclasses.dataclass
class Turn:
    """One answer: the text, the intent that matched (None: the fallback), its slots."""

    text: str
    intent: str | None
    slots: dict


class RuleBot:
    """Answers messages with the first best-priority intent whose pattern matches."""

    def __init__(self, intents, fallback, name="bot"):
        self.intents, self.fallback, self.name = intents, list(fallback), name
        self.reset()

    def reset(self):
        """Starts a new conversation: no contexts, no slots."""
        self.contexts, self.slots, self.turns = set(), {}, 0

    def match(self, message):
        """(intent, slots) of the best match for `message` in the current state, or None."""
        best = None
        for intent in self.intents:
            if not intent.requires <= self.contexts:
                continue
            for pattern in intent.patterns:
                found = pattern.search(message)
                if found and (best is None or intent.priority > best[0].priority):
                    slots = {k: v for k, v in found.groupdict().items() if v is not None}
                    best = (intent, slots)
                    break
        return best

    def answer(self, message):
        """The bot's `Turn` for `message`, updating the conversation state."""
        self.turns += 1
        found = self.match(message.strip())
        if found is None:
            return Turn(self.fallback[(self.turns - 1) % len(self.fallback)], None, {})
        intent, slots = found
        self.slots.update(slots)
        self.contexts = (self.contexts - intent.clears) | intent.sets
        usable = [t for t in intent.responses if _fields(t) <= set(self.slots)]
        if not usable:  # a remembered slot this conversation has not filled yet
            return Turn(self.fallback[(self.turns - 1) % len(self.fallback)], None, {})
        most = max(len(_fields(t)) for t in usable)  # the template that says the most
        usable = [t for t in usable if len(_fields(t)) == most]
        template = usable[(self.turns - 1) % len(usable)]
        return Turn(template.format(**self.slots), intent.name, dict(self.slots))

    def reply(self, history):
        """The answer to the last of `history`'s user turns, the earlier ones replayed from a
        fresh state (stateless use)."""
        self.reset()
        turn = None
        for message in history:
            turn = self.answer(message)
        return turn


def _fields(template):
    """The slot names a response template uses (`{order}` → order)."""
    return {field for _, field, _, _ in string.Formatter().parse(template) if field}


def _strings(value, where, path):
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise UserError(f"{path}: {where} must be a string or a list of strings")
    return value


def load_rules(path):
    """A `RuleBot` from a rules YAML file; a malformed file is one error naming the file (and
    line, for YAML syntax), the intent and what is wrong."""
    try:
        with open(path, encoding="utf-8") as f:
            document = yaml.safe_load(f)
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else path
        raise UserError(f"{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    except UnicodeDecodeError:
        raise UserError(f"{path}: not valid UTF-8") from None
    if not isinstance(document, dict) or not isinstance(document.get("intents"), list) \
            or not document["intents"]:
        raise UserError(f"{path}: a rules file is a mapping with a non-empty 'intents' list")
    unknown = set(document) - {"bot", "fallback", "intents"}
    if unknown:
        raise UserError(f"{path}: unknown key {sorted(unknown)[0]!r} (keys: bot, fallback, intents)")
    fallback = _strings(document.get("fallback", ["Sorry, I did not understand that."]),
                        "fallback", path)
    intents, names = [], set()
    for index, raw in enumerate(document["intents"]):
        if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
            raise UserError(f"{path}: intent {index} needs a name")
        name = raw["name"]
        where = f"intent {name!r}"
        if name in names:
            raise UserError(f"{path}: {where} is defined twice")
        names.add(name)
        extra = set(raw) - _INTENT_KEYS
        if extra:
            raise UserError(f"{path}: {where} has an unknown key {sorted(extra)[0]!r} "
                            f"(keys: {', '.join(sorted(_INTENT_KEYS))})")
        priority = raw.get("priority", 0)
        if isinstance(priority, bool) or not isinstance(priority, int):
            raise UserError(f"{path}: {where}: priority must be an integer")
        patterns = []
        for text in _strings(raw.get("patterns", []), f"{where}: patterns", path):
            try:
                patterns.append(re.compile(text, re.IGNORECASE))
            except re.error as exc:
                raise UserError(f"{path}: {where}: pattern {text!r} is not a valid regular "
                                f"expression ({exc})") from None
        responses = _strings(raw.get("responses", []), f"{where}: responses", path)
        if not patterns or not responses:
            raise UserError(f"{path}: {where} needs at least one pattern and one response")
        captured = {g for p in patterns for g in p.groupindex}
        intents.append(Intent(name, priority, patterns,
                              set(_strings(raw.get("requires", []), f"{where}: requires", path)),
                              set(_strings(raw.get("sets", []), f"{where}: sets", path)),
                              set(_strings(raw.get("clears", []), f"{where}: clears", path)),
                              responses, captured))
    everything = {g for intent in intents for g in intent.captured}
    for intent in intents:
        for template in intent.responses:
            try:
                fields = _fields(template)
            except ValueError as exc:
                raise UserError(f"{path}: intent {intent.name!r}: response {template!r} is not a "
                                f"valid template ({exc})") from None
            missing = fields - everything
            if missing:
                raise UserError(f"{path}: intent {intent.name!r}: response {template!r} uses the "
                                f"slot {sorted(missing)[0]!r}, which no pattern captures")
    return RuleBot(intents, fallback, name=str(document.get("bot", "bot")))
