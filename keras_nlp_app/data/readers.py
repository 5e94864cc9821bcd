"""Readers for plain text, TSV/CSV and JSONL files into (text, label) examples.

Every malformed line is reported with its file and line number. With `on_bad_line="skip"` the
reader drops such lines and counts them in the returned `ReadReport`, so the caller can say how
many were lost. Files must be UTF-8 (a byte-order mark is allowed); Windows line endings and a
missing final newline are fine.
"""

import csv
import dataclasses
import io
import json
import os

from keras_nlp_app.errors import DataError

FORMATS = ("tsv", "csv", "jsonl", "txt")
_SUFFIXES = {".tsv": "tsv", ".csv": "csv", ".jsonl": "jsonl", ".json": "jsonl", ".txt": "txt"}


@dataclasses.dataclass
class ReadReport:
    """What a reader kept and dropped."""

    path: str
    examples: int = 0
    skipped: int = 0
    first_skipped: str = ""  # the message of the first dropped line, for the log


@dataclasses.dataclass
class Examples:
    texts: list
    labels: list  # strings; None for unlabelled text
    lines: list  # the line (first line of a multi-line CSV record) each example came from
    report: ReadReport
    groups: list = None  # a unit per example (e.g. its article) that a holdout keeps together


def numbered_lines(path):
    """(line number, text) of each line of the UTF-8 file `path`, decoded one by one so that an
    error names its line (for files too large to decode at once)."""
    with open(path, "rb") as f:
        for number, raw in enumerate(f, 1):
            try:
                yield number, raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError:
                raise DataError("is not UTF-8 text", path=path, line=number) from None


def detect_format(path, fmt="auto"):
    if fmt != "auto":
        return fmt
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in _SUFFIXES:
        raise DataError(
            f"cannot tell the format from the suffix {suffix or '(none)'}; "
            f"set data.format to one of {', '.join(FORMATS)}", path=path)
    return _SUFFIXES[suffix]


def _check_path(path):
    if os.path.isdir(path):
        raise DataError("is a directory, expected a data file", path=path)
    if not os.path.exists(path):
        raise DataError("file not found", path=path)


def read_text(path):
    """The whole file as str, with a clear error for missing, binary or non-UTF-8 files."""
    _check_path(path)
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise DataError(f"cannot read: {exc.strerror}", path=path) from None
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DataError("is UTF-16 encoded; convert it to UTF-8 (e.g. iconv -f UTF-16 -t UTF-8)",
                        path=path)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise DataError(
            f"not valid UTF-8 (byte 0x{raw[exc.start]:02x}); re-encode the file as UTF-8",
            path=path, line=line) from None
    nul = text.find("\x00")
    if nul >= 0:
        line = text.count("\n", 0, nul) + 1
        raise DataError("contains a NUL byte; is this a binary file?", path=path, line=line)
    return text


def _lines(text):
    """Physical lines without their terminators (\\n or \\r\\n), numbered from 1."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for number, line in enumerate(lines, start=1):
        yield number, line[:-1] if line.endswith("\r") else line


class _Collector:
    """Applies the on_bad_line policy and builds the report."""

    def __init__(self, path, on_bad_line):
        if on_bad_line not in ("error", "skip"):
            raise DataError(f"on_bad_line must be error or skip, got {on_bad_line!r}")
        self.path = path
        self.on_bad_line = on_bad_line
        self.texts, self.labels, self.lines = [], [], []
        self.report = ReadReport(path=path)

    def bad(self, line, message):
        if self.on_bad_line == "error":
            raise DataError(message, path=self.path, line=line)
        self.report.skipped += 1
        if not self.report.first_skipped:
            self.report.first_skipped = f"{self.path}:{line}: {message}"

    def add(self, line, text, label):
        self.lines.append(line)
        self.texts.append(text)
        self.labels.append(label)

    def finish(self, require_examples=True):
        self.report.examples = len(self.texts)
        if require_examples and not self.texts:
            detail = f" ({self.report.skipped} malformed lines skipped)" if self.report.skipped else ""
            raise DataError(f"no examples in file{detail}", path=self.path)
        return Examples(self.texts, self.labels, self.lines, self.report)


def _label_value(value, path, line, allow_list=True):
    """A label as a string, or a list of strings for a JSON list (multi-label data)."""
    if isinstance(value, list) and allow_list:
        return [_label_value(v, path, line, allow_list=False) for v in value]
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise DataError(f"label must be a string, an integer or a list of them, got {value!r}",
                        path=path, line=line)
    return str(value)


def _fields(text_field):
    """`text_field` as a list: several fields are joined with a newline into one text."""
    return [text_field] if isinstance(text_field, str) else list(text_field)


def _resolve_columns(path, header_fields, columns, text_field, label_field):
    if len(set(header_fields)) != len(header_fields):
        raise DataError(f"duplicate column names {header_fields}", path=path, line=1)
    wanted = _fields(text_field) + ([label_field] if label_field is not None else [])
    missing = [f for f in wanted if f not in header_fields]
    if missing:
        where = "header" if columns is None else "data.columns"
        raise DataError(
            f"{where} has no column {missing[0]!r} (columns: {', '.join(header_fields)}); "
            f"set data.text_field / data.label_field", path=path, line=1 if columns is None else None)
    return [header_fields.index(f) for f in _fields(text_field)], (
        header_fields.index(label_field) if label_field is not None else None)


def read_delimited(path, *, delimiter, text_field, label_field, header=True, columns=None,
                   on_bad_line="error"):
    """Reads TSV (tab, no quoting) or CSV (RFC 4180 quoting) with a header or named columns."""
    text = read_text(path)
    out = _Collector(path, on_bad_line)
    if delimiter == "\t":
        rows = ((n, line.split("\t")) for n, line in _lines(text))
    else:
        rows = _csv_rows(path, text)
    header_fields = None
    if not header:
        if not columns:
            raise DataError("data.header is false, so data.columns must name the columns", path=path)
        header_fields = list(columns)
    text_index = label_index = None
    if header_fields is not None:
        text_index, label_index = _resolve_columns(path, header_fields, columns, text_field, label_field)
    for number, fields in rows:
        if header_fields is None:
            header_fields = [f.strip() for f in fields]
            text_index, label_index = _resolve_columns(path, header_fields, None, text_field, label_field)
            continue
        if fields == [""]:
            continue  # blank line
        if len(fields) != len(header_fields):
            out.bad(number, f"expected {len(header_fields)} fields ({', '.join(header_fields)}), "
                            f"found {len(fields)}")
            continue
        label = None
        if label_index is not None:
            label = fields[label_index].strip()
            if label == "":
                out.bad(number, f"empty {label_field}")
                continue
        out.add(number, "\n".join(fields[i] for i in text_index), label)
    if header_fields is None:
        raise DataError("file is empty", path=path)
    return out.finish()


def _csv_rows(path, text):
    """CSV rows with the physical line number where each record starts."""
    csv.field_size_limit(1 << 30)
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    start = 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise DataError(f"malformed CSV: {exc}", path=path, line=reader.line_num) from None
        yield start, row if row else [""]
        start = reader.line_num + 1


def _json_objects(path, out):
    """(line number, object) for every JSON object line; blank lines are ignored and other
    lines reported to the collector `out`."""
    for number, line in _lines(read_text(path)):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            out.bad(number, f"not valid JSON ({exc.msg} at column {exc.colno})")
            continue
        if not isinstance(record, dict):
            out.bad(number, f"expected a JSON object, found {type(record).__name__}")
            continue
        yield number, record


def read_jsonl(path, *, text_field, label_field, on_bad_line="error"):
    """Reads one JSON object per line; blank lines are ignored."""
    out = _Collector(path, on_bad_line)
    for number, record in _json_objects(path, out):
        wanted = _fields(text_field) + ([label_field] if label_field is not None else [])
        missing = [f for f in wanted if f not in record]
        if missing:
            out.bad(number, f"missing field {missing[0]!r} (fields: {', '.join(record) or 'none'})")
            continue
        wrong = [f for f in _fields(text_field) if not isinstance(record[f], str)]
        if wrong:
            out.bad(number, f"field {wrong[0]!r} must be a string, got {type(record[wrong[0]]).__name__}")
            continue
        value = "\n".join(record[f] for f in _fields(text_field))
        label = None
        if label_field is not None:
            try:
                label = _label_value(record[label_field], path, number)
            except DataError as exc:
                out.bad(number, str(exc).split(": ", 1)[-1])
                continue
        out.add(number, value, label)
    return out.finish()


def read_text_lines(path, *, on_bad_line="error"):
    """Reads plain text, one example per line (unlabelled)."""
    text = read_text(path)
    out = _Collector(path, on_bad_line)
    for number, line in _lines(text):
        out.add(number, line, None)
    return out.finish()


def read_examples(path, *, fmt="auto", text_field="sentence", label_field="label", header=True,
                  columns=None, on_bad_line="error"):
    """Reads a labelled (or, with label_field=None, unlabelled) data file of any supported format.

    Args:
        path: the file.
        fmt: auto | tsv | csv | jsonl | txt.
        text_field: column name or JSON key of the text, or a list of them (joined by newlines).
        label_field: column name or JSON key of the label (a JSON list for multi-label data).
        header, columns: for tsv/csv, whether the first line names the columns, or the names.
        on_bad_line: error (raise at the first malformed line) or skip (drop and count).

    Returns:
        Examples(texts, labels, lines, report).
    """
    _check_path(path)
    fmt = detect_format(path, fmt)
    if fmt == "tsv":
        return read_delimited(path, delimiter="\t", text_field=text_field, label_field=label_field,
                              header=header, columns=columns, on_bad_line=on_bad_line)
    if fmt == "csv":
        return read_delimited(path, delimiter=",", text_field=text_field, label_field=label_field,
                              header=header, columns=columns, on_bad_line=on_bad_line)
    if fmt == "jsonl":
        return read_jsonl(path, text_field=text_field, label_field=label_field,
                          on_bad_line=on_bad_line)
    if fmt == "txt":
        if label_field is not None:
            raise DataError("plain text files carry no labels; use tsv, csv or jsonl", path=path)
        return read_text_lines(path, on_bad_line=on_bad_line)
    raise DataError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}", path=path)


def read_parallel(source_path, target_path, *, on_bad_line="error"):
    """Line-aligned source and target files (one sentence per line) as Examples(texts=sources,
    labels=targets). Files with different line counts are refused, naming both counts."""
    sources = list(_lines(read_text(source_path)))
    targets = list(_lines(read_text(target_path)))
    if len(sources) != len(targets):
        raise DataError(f"has {len(sources)} lines but {target_path} has {len(targets)}; "
                        f"parallel files must be line-aligned", path=source_path)
    out = _Collector(source_path, on_bad_line)
    for (number, source), (_, target) in zip(sources, targets):
        if not source.strip() or not target.strip():
            side = "source" if not source.strip() else f"target ({target_path})"
            out.bad(number, f"empty {side} line")
            continue
        out.add(number, source.strip(), target.strip())
    return out.finish()


def dialogue_source(turns):
    """The source text for a reply to `turns` (oldest first): one turn per line, the turn being
    answered marked `A:` and the ones before it alternating `B:` / `A:`."""
    count = len(turns)
    return "\n".join(f"{'A' if (count - i) % 2 else 'B'}: {turn}" for i, turn in enumerate(turns))


def read_dialogues(path, *, context_turns=2, on_bad_line="error"):
    """DailyDialog-style files (one dialogue per line, turns ended by `__eou__`) as one example
    per reply: source = the `context_turns` turns before it (`dialogue_source`), target = it."""
    out = _Collector(path, on_bad_line)
    for number, line in _lines(read_text(path)):
        turns = [t.strip() for t in line.split("__eou__") if t.strip()]
        if len(turns) < 2:
            out.bad(number, "a dialogue needs at least two turns separated by __eou__")
            continue
        for i in range(1, len(turns)):
            out.add(number, dialogue_source(turns[max(0, i - context_turns):i]), turns[i])
    return out.finish()


def read_conll(path, *, scheme="iob1", tag_column=-1, on_bad_line="error"):
    """CoNLL column files (`TOKEN ... TAG` per line, blank lines between sentences, `-DOCSTART-`
    lines ignored) as one example per sentence: texts = token lists, labels = tag lists
    (in `scheme`, as written in the file; `text.entities.convert_tags` changes scheme).

    A bad sentence (a line with one column, a column count that changes inside the sentence,
    a tag that is not `O` or `P-TYPE`) is an error naming the file and line, or with
    `on_bad_line="skip"` the whole sentence is dropped and counted."""
    from keras_nlp_app.text.entities import SCHEMES, split_tag

    if scheme not in SCHEMES:
        raise DataError(f"unknown tag scheme {scheme!r}; choose one of {', '.join(SCHEMES)}")
    out = _Collector(path, on_bad_line)
    tokens, tags, first, columns, problem = [], [], None, None, None

    def flush():
        nonlocal tokens, tags, first, columns, problem
        if problem:
            out.bad(*problem)
        elif tokens:
            out.add(first, tokens, tags)
        tokens, tags, first, columns, problem = [], [], None, None, None

    for number, line in _lines(read_text(path)):
        fields = line.split()
        if not fields:
            flush()
            continue
        if fields[0] == "-DOCSTART-":
            flush()
            continue
        first = first or number
        if problem:
            continue
        if len(fields) < 2:
            problem = (number, f"expected 'TOKEN ... TAG' columns, found one field {line.strip()!r}")
        elif columns is not None and len(fields) != columns:
            problem = (number, f"{len(fields)} columns where the sentence's lines have {columns}")
        else:
            columns = len(fields)
            try:
                tag = fields[tag_column]
                split_tag(tag)
            except IndexError:
                problem = (number, f"no column {tag_column} for the tag")
                continue
            except ValueError as exc:
                problem = (number, str(exc))
                continue
            tokens.append(fields[0])
            tags.append(tag)
    flush()
    return out.finish()


def read_entity_jsonl(path, *, text_field="text", entities_field="entities", on_bad_line="error"):
    """JSONL with raw text and entity character spans, one object per line:
    `{"text": "Ada lives in Paris", "entities": [{"start": 0, "end": 3, "type": "PER"}, ...]}`
    (`label` for `type` and `[start, end, type]` lists are accepted too). Returns texts and, as
    labels, sorted lists of (type, start, end); overlapping or out-of-range spans are errors."""
    out = _Collector(path, on_bad_line)
    for number, record in _json_objects(path, out):
        if not isinstance(record.get(text_field), str):
            out.bad(number, f"expected a string field {text_field!r}")
            continue
        text, raw = record[text_field], record.get(entities_field, [])
        try:
            spans = sorted(_entity_span(item, len(text)) for item in raw)
        except (TypeError, ValueError, KeyError) as exc:
            out.bad(number, f"bad entity in {entities_field!r}: {exc}")
            continue
        overlap = [(a, b) for a, b in zip(spans, spans[1:]) if b[0] < a[1]]
        if overlap:
            out.bad(number, f"entities {overlap[0][0]} and {overlap[0][1]} overlap")
            continue
        out.add(number, text, [(kind, start, end) for start, end, kind in spans])
    return out.finish()


def _entity_span(item, length):
    if isinstance(item, dict):
        start, end, kind = item["start"], item["end"], item.get("type", item.get("label"))
    else:
        start, end, kind = item
    if not (isinstance(start, int) and isinstance(end, int) and isinstance(kind, str) and kind):
        raise ValueError(f"{item!r} needs integer start and end and a type")
    if not 0 <= start < end <= length:
        raise ValueError(f"{item!r} is outside the text (length {length})")
    return start, end, kind
