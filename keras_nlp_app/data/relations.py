"""Relation examples: SemEval-2010 Task 8 files (`<e1>…</e1>`, `<e2>…</e2>` in a numbered,
quoted sentence, then the directed label, a comment line and a blank line) and JSONL (`text`,
`head`/`tail` character spans `[start, end)` or `{"start", "end"}`, `label`).

Each example keeps its raw text and spans, and as its classifier text the sentence with entity
markers inserted (`mark`), which the relation task tokenizes like any classifier text.
"""

import dataclasses
import json
import os
import re

from keras_nlp_app.data.readers import Examples, _Collector, read_text

HEAD_START, HEAD_END, TAIL_START, TAIL_END = "__e1s__", "__e1e__", "__e2s__", "__e2e__"
MARKERS = (HEAD_START, HEAD_END, TAIL_START, TAIL_END)
_TAG = re.compile(r"</?e[12]>")
_SEMEVAL_LINE = re.compile(r'^\s*(\d+)\t"(.*)"\s*$')


@dataclasses.dataclass
class RelationExamples(Examples):
    sources: list = None  # (text, head_start, head_end, tail_start, tail_end) per example
    read: int | None = None  # with mirrored pairs after them: how many examples were read


def mark(text, head, tail):
    """The text with markers around the head and tail spans (character offsets, end exclusive):
    `... __e1s__ head __e1e__ ... __e2s__ tail __e2e__ ...`; the graph version is
    `keras_nlp_app.tasks.relation_graphs.mark_graph`, which must give the same string."""
    (hs, he), (ts, te) = head, tail
    if hs < ts:
        return (f"{text[:hs]} {HEAD_START} {text[hs:he]} {HEAD_END} {text[he:ts]} {TAIL_START} "
                f"{text[ts:te]} {TAIL_END} {text[te:]}")
    return (f"{text[:ts]} {TAIL_START} {text[ts:te]} {TAIL_END} {text[te:hs]} {HEAD_START} "
            f"{text[hs:he]} {HEAD_END} {text[he:]}")


def check_spans(text, head, tail):
    """A ValueError when the spans are not inside the text, are empty or overlap."""
    for name, (start, end) in (("head", head), ("tail", tail)):
        if not 0 <= start < end <= len(text):
            raise ValueError(f"the {name} span [{start}, {end}) is not a non-empty span of the "
                             f"{len(text)}-character text")
    if head[0] < tail[1] and tail[0] < head[1]:
        raise ValueError(f"the head span {list(head)} and the tail span {list(tail)} overlap")


def parse_marked(marked):
    """(text, head, tail) of a sentence with `<e1>…</e1>` and `<e2>…</e2>`; a ValueError says
    what is wrong (missing, repeated or nested markers)."""
    tags = _TAG.findall(marked)
    if sorted(tags) != ["</e1>", "</e2>", "<e1>", "<e2>"]:
        raise ValueError(f"needs exactly one <e1>…</e1> and one <e2>…</e2>, found "
                         f"{' '.join(tags) or 'no markers'}")
    text, spans, opened, position = [], {}, {}, 0
    for piece in re.split(r"(</?e[12]>)", marked):
        if _TAG.fullmatch(piece):
            name = piece.strip("</>")
            if piece.startswith("</"):
                if name not in opened:
                    raise ValueError(f"{piece} closes before <{name}> opens")
                spans[name] = (opened.pop(name), position)
            else:
                if opened:
                    raise ValueError(f"<{name}> opens inside <{next(iter(opened))}> (nested markers)")
                opened[name] = position
        else:
            text.append(piece)
            position += len(piece)
    text = "".join(text)
    check_spans(text, spans["e1"], spans["e2"])
    return text, spans["e1"], spans["e2"]


def mirrored_label(label):
    """`R(e2,e1)` for `R(e1,e2)` and back; any other label (SemEval's `Other`) as it is."""
    for one, other in (("(e1,e2)", "(e2,e1)"), ("(e2,e1)", "(e1,e2)")):
        if label.endswith(one):
            return label[:-len(one)] + other
    return label


def with_mirrored_pairs(examples):
    """`examples` followed by each of them with head and tail exchanged and its label mirrored
    (Xu et al. 2016's augmentation by relation direction): the same sentence read the other way
    round is a second, correct example of the mirrored relation."""
    mirrored = [mark(text, (ts, te), (hs, he)) for text, hs, he, ts, te in examples.sources]
    return dataclasses.replace(
        examples, texts=examples.texts + mirrored,
        labels=examples.labels + [mirrored_label(label) for label in examples.labels],
        lines=examples.lines + examples.lines,
        sources=examples.sources + [(text, ts, te, hs, he)
                                    for text, hs, he, ts, te in examples.sources],
        groups=None if examples.groups is None else examples.groups + examples.groups,
        report=dataclasses.replace(examples.report, examples=2 * len(examples.texts)),
        read=len(examples.texts))


def read_texts(examples):
    """The marked texts as read, without their mirrored copies: what a vocabulary is learned
    from, so that mirroring does not double every word's count (`tokenizer.min_count`)."""
    return examples.texts[:examples.read]


def _add(out, line, text, head, tail, label):
    out.add(line, mark(text, head, tail), label)
    out.sources.append((text, head[0], head[1], tail[0], tail[1]))


def _read_semeval(path, out, labelled):
    lines = read_text(path).splitlines()
    number = 0
    while number < len(lines):
        if not lines[number].strip():
            number += 1
            continue
        first = number + 1
        found = _SEMEVAL_LINE.match(lines[number])
        number += 1
        label = None
        following = lines[number].strip() if number < len(lines) else ""
        if following and not _SEMEVAL_LINE.match(lines[number]) \
                and not following.startswith("Comment"):
            label, number = following, number + 1
        if number < len(lines) and lines[number].startswith("Comment"):
            number += 1
        if not found:
            out.bad(first, 'expected an id, a tab and the sentence in double quotes')
            continue
        if labelled and label is None:
            out.bad(first + 1, "expected the relation label after the sentence")
            continue
        try:
            text, head, tail = parse_marked(found.group(2))
        except ValueError as exc:
            out.bad(first, str(exc))
            continue
        _add(out, first, text, head, tail, label)


def _span(value, name):
    if isinstance(value, dict):
        value = [value.get("start"), value.get("end")]
    if not isinstance(value, list) or len(value) != 2 or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise ValueError(f"{name} must be [start, end] or {{\"start\", \"end\"}} character offsets")
    return tuple(value)


def _read_jsonl(path, out, labelled):
    from keras_nlp_app.data.readers import _json_objects

    for number, record in _json_objects(path, out):
        try:
            text, label = record.get("text"), record.get("label")
            if not isinstance(text, str) or not text.strip():
                raise ValueError("needs a non-empty string \"text\"")
            if (labelled or label is not None) and (not isinstance(label, str) or not label):
                raise ValueError("needs a string \"label\"")
            head, tail = _span(record.get("head"), "head"), _span(record.get("tail"), "tail")
            check_spans(text, head, tail)
        except ValueError as exc:
            out.bad(number, str(exc))
            continue
        _add(out, number, text, head, tail, label)


def read_relations(path, *, on_bad_line="error", labelled=True):
    """Relation examples of a SemEval-2010 Task 8 file (any suffix but .jsonl) or JSONL; with
    `labelled=False` (inputs to predict) the label lines and fields are optional."""
    out = _Collector(path, on_bad_line)
    out.sources = []
    if os.path.splitext(path)[1].lower() == ".jsonl":
        _read_jsonl(path, out, labelled)
    else:
        _read_semeval(path, out, labelled)
    found = out.finish()
    return RelationExamples(found.texts, found.labels, found.lines, found.report,
                            sources=out.sources)


def write_jsonl(examples, path):
    """Writes relation examples as JSONL (the format `read_relations` reads), for tests and tools."""
    with open(path, "w", encoding="utf-8") as f:
        for (text, hs, he, ts, te), label in zip(examples.sources, examples.labels):
            f.write(json.dumps({"text": text, "head": [hs, he], "tail": [ts, te], "label": label},
                               ensure_ascii=False) + "\n")
