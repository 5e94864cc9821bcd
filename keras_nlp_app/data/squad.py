"""SQuAD reading: extractive QA examples from SQuAD v1.1/v2.0 JSON or JSONL, with every answer
checked against its context (errors name the file and the question)."""

import json
import os

from keras_nlp_app.data.readers import _Collector, _json_objects, read_text
from keras_nlp_app.errors import DataError


def _answer_list(answers, where):
    """SQuAD's `[{text, answer_start}, ...]` as it is; Hugging Face `datasets`' columnar
    `{"text": [...], "answer_start": [...]}` (how its SQuAD exports to JSONL) turned into it."""
    if not isinstance(answers, dict):
        return answers
    texts, starts = answers.get("text"), answers.get("answer_start")
    if set(answers) - {"text", "answer_start"} or not isinstance(texts, list) \
            or not isinstance(starts, list) or len(texts) != len(starts):
        raise ValueError(f"{where}: columnar answers need equally long \"text\" and "
                         f"\"answer_start\" lists, got {answers!r}")
    return [{"text": text, "answer_start": start} for text, start in zip(texts, starts)]


def _squad_answers(qa, context, where):
    """The answers of one SQuAD question as [(text, start)], each checked against its context
    (an unanswerable v2.0 question has none); a ValueError says what is wrong."""
    answers = [] if qa.get("is_impossible") else _answer_list(qa.get("answers"), where)
    if not isinstance(answers, list):
        raise ValueError(f"{where} has no answers list (an unanswerable question has "
                         f"\"answers\": [] or \"is_impossible\": true)")
    found = []
    for answer in answers:
        if not isinstance(answer, dict) or not isinstance(answer.get("text"), str) \
                or isinstance(answer.get("answer_start"), bool) \
                or not isinstance(answer.get("answer_start"), int):
            raise ValueError(f"{where}: an answer needs a string text and an integer answer_start, "
                             f"got {answer!r}")
        text, start = answer["text"], answer["answer_start"]
        if not text.strip():
            raise ValueError(f"{where}: an answer text is empty")
        if context[start:start + len(text)] != text:
            raise ValueError(f"{where}: answer {text!r} is not the context's text at answer_start "
                             f"{start} ({context[start:start + len(text)]!r})")
        found.append((text, start))
    return found


def _squad_record(qa, context, where):
    """(question, answers) of one question object; a ValueError says what is wrong."""
    if not isinstance(context, str) or not context.strip():
        raise ValueError(f"{where} has an empty context")
    if not isinstance(qa, dict) or not isinstance(qa.get("question"), str) or not qa["question"].strip():
        raise ValueError(f"{where} has no question text")
    return qa["question"], _squad_answers(qa, context, where)


def read_squad(path, *, on_bad_line="error"):
    """Extractive QA examples from SQuAD v1.1/v2.0 JSON (`data → paragraphs → qas → answers`) or
    JSONL (`question`, `context`, `answers: [{text, answer_start}]` or Hugging Face's columnar
    `{text: [...], answer_start: [...]}`, optional `id`, `title`).

    Returns Examples with texts = (question, context) pairs, labels = [(answer text, character
    start)] (empty for an unanswerable v2.0 question), lines = question ids (JSONL: line
    numbers) and groups = the article (title) of each question, so a holdout splits by article.
    Every answer must be the context's text at its offset: a mismatch names the question.
    """
    out = _Collector(path, on_bad_line)
    groups = []

    def add(where, line, qa, context, title):
        try:
            question, answers = _squad_record(qa, context, where)
        except ValueError as exc:
            out.bad(line, str(exc))
            return
        out.add(qa.get("id", line), (question, context), answers)
        groups.append(title)

    if os.path.splitext(path)[1].lower() == ".jsonl":
        for number, record in _json_objects(path, out):
            add(f"question {record.get('id', number)!r}", number, record, record.get("context"),
                record.get("title", number))
        found = out.finish()
    else:
        try:
            document = json.loads(read_text(path))
        except json.JSONDecodeError as exc:
            raise DataError(f"not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})",
                            path=path, line=exc.lineno) from None
        articles = document.get("data") if isinstance(document, dict) else None
        if not isinstance(articles, list):
            raise DataError("not SQuAD JSON: expected an object with a \"data\" list of articles",
                            path=path)
        for a, article in enumerate(articles):
            paragraphs = article.get("paragraphs") if isinstance(article, dict) else None
            title = article.get("title", a) if isinstance(article, dict) else a
            if not isinstance(paragraphs, list) or not paragraphs:
                out.bad(None, f"article {a} ({title!r}) has no paragraphs")
                continue
            for p, paragraph in enumerate(paragraphs):
                qas = paragraph.get("qas") if isinstance(paragraph, dict) else None
                if not isinstance(qas, list):
                    out.bad(None, f"article {a} paragraph {p} has no qas list")
                    continue
                context = paragraph.get("context")
                for q, qa in enumerate(qas):
                    ident = qa.get("id", f"{a}-{p}-{q}") if isinstance(qa, dict) else f"{a}-{p}-{q}"
                    where = f"question {ident!r} (article {a}, paragraph {p})"
                    try:
                        question, answers = _squad_record(qa, context, where)
                    except ValueError as exc:
                        out.bad(None, str(exc))
                        continue
                    out.add(ident, (question, context), answers)
                    groups.append(title)
        found = out.finish()
    found.groups = groups
    return found
