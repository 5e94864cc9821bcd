"""Entity tags and spans: the IOB1, BIO (IOB2) and BIOES schemes, conversions between them, and
the in-graph span extraction the tagging export uses to return entities with character offsets.

A tag is `O` or `P-TYPE` with the prefix P one of B (begin), I (inside), E (end), S (single).
Reading is lenient, as seqeval's default and conlleval are: an `I-X` after `O` or after another
type starts an entity, so every tag sequence decodes to spans and IOB1 needs no special case.

Example:
    spans_from_tags(["B-PER", "I-PER", "O", "I-LOC"])   # [("PER", 0, 2), ("LOC", 3, 4)]
    convert_tags(["I-ORG", "O"], "bioes")                # ["S-ORG", "O"]
"""

SCHEMES = ("iob1", "bio", "bioes")
_PREFIXES = {"B", "I", "E", "S"}


def split_tag(tag):
    """("P", "TYPE") for `P-TYPE`, ("O", "") for `O`; ValueError for anything else."""
    if tag == "O":
        return "O", ""
    prefix, dash, kind = tag.partition("-")
    if not dash or prefix not in _PREFIXES or not kind:
        raise ValueError(f"tag {tag!r} is not O or B-/I-/E-/S- followed by a type")
    return prefix, kind


def spans_from_tags(tags):
    """Entity spans `(type, start, end)` (end exclusive) of a tag sequence in any scheme."""
    spans, start, kind = [], None, None
    for i, tag in enumerate(list(tags) + ["O"]):
        prefix, this_kind = split_tag(tag)
        continues = (start is not None and prefix in ("I", "E") and this_kind == kind)
        if start is not None and not continues:
            spans.append((kind, start, i))
            start = None
        if prefix != "O" and start is None:
            start, kind = i, this_kind
        if prefix in ("E", "S") and start is not None:
            spans.append((kind, start, i + 1))
            start = None
    return spans


def tags_from_spans(spans, length, scheme="bio"):
    """The tag sequence of `length` tokens holding `spans` (non-overlapping) in `scheme`."""
    if scheme not in SCHEMES:
        raise ValueError(f"unknown tag scheme {scheme!r}; choose one of {', '.join(SCHEMES)}")
    tags = ["O"] * length
    previous_end, previous_kind = None, None
    for kind, start, end in sorted(spans, key=lambda s: s[1]):
        for i in range(start, end):
            tags[i] = f"I-{kind}"
        if scheme == "bio":
            tags[start] = f"B-{kind}"
        elif scheme == "iob1":
            if previous_end == start and previous_kind == kind:
                tags[start] = f"B-{kind}"
        else:
            if end - start == 1:
                tags[start] = f"S-{kind}"
            else:
                tags[start], tags[end - 1] = f"B-{kind}", f"E-{kind}"
        previous_end, previous_kind = end, kind
    return tags


def convert_tags(tags, scheme):
    """`tags` (any scheme) rewritten in `scheme`."""
    return tags_from_spans(spans_from_tags(tags), len(tags), scheme)


def tag_set(types, scheme):
    """Every tag of `scheme` over entity `types`: `O` first, then the types in order."""
    prefixes = {"iob1": "BI", "bio": "BI", "bioes": "BIES"}[scheme]
    return ["O"] + [f"{p}-{t}" for t in sorted(types) for p in prefixes]


def graph_entity_bounds(tags, mask):
    """Which tokens start and which end an entity, in graph, by the rules of `spans_from_tags`.

    Args:
        tags: `[B, T]` string tags.
        mask: `[B, T]` bool, the real tokens (a prefix of each row).

    Returns:
        (starts, ends): `[B, T]` bool each; in every row the k-th start pairs with the k-th end.
    """
    import tensorflow as tf

    tags = tf.where(mask, tags, "O")
    # two columns even when no tag in the batch has a type (all O)
    parts = tf.strings.split(tags, "-", maxsplit=1).to_tensor("", shape=[None, None, 2])
    prefix, kind = parts[..., 0], parts[..., 1]
    outside = tf.equal(prefix, "O")
    pad_prefix = tf.fill(tf.shape(prefix[:, :1]), "O")
    pad_kind = tf.fill(tf.shape(kind[:, :1]), "")
    previous_prefix = tf.concat([pad_prefix, prefix[:, :-1]], 1)
    previous_kind = tf.concat([pad_kind, kind[:, :-1]], 1)
    next_prefix = tf.concat([prefix[:, 1:], pad_prefix], 1)
    next_kind = tf.concat([kind[:, 1:], pad_kind], 1)

    def either(values, a, b):
        return tf.equal(values, a) | tf.equal(values, b)

    continues_previous = (either(prefix, "I", "E") & tf.equal(kind, previous_kind)
                          & ~either(previous_prefix, "E", "S") & ~tf.equal(previous_prefix, "O"))
    continued_by_next = (either(next_prefix, "I", "E") & tf.equal(next_kind, kind)
                         & ~either(prefix, "E", "S"))
    return ~outside & ~continues_previous, ~outside & ~continued_by_next
