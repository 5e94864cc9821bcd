import pytest

from keras_nlp_app.data.readers import read_examples
from keras_nlp_app.errors import DataError


def write(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return str(path)


@pytest.mark.parametrize("content", [
    "sentence\tlabel\r\na fine film\t1\r\na dull film\t0\r\n",
    "\ufeffsentence\tlabel\na fine film\t1\na dull film\t0",
])
def test_tsv_with_crlf_bom_and_no_final_newline(tmp_path, content):
    examples = read_examples(write(tmp_path, "a.tsv", content))
    assert examples.texts == ["a fine film", "a dull film"]
    assert examples.labels == ["1", "0"]
    assert examples.lines == [2, 3]


def test_unicode_long_and_empty_texts_are_kept(tmp_path):
    long_text = "good " * 50000
    path = write(tmp_path, "a.tsv", f"sentence\tlabel\n\t1\n映画 😀\t0\n{long_text}\t1\n")
    assert read_examples(path).texts == ["", "映画 😀", long_text]


@pytest.mark.parametrize("name,content,message,line", [
    ("a.tsv", b"sentence\tlabel\nun caf\xe9\t1\n", "not valid UTF-8", 2),
    ("a.tsv", b"\xff\xfes\x00", "UTF-16", None),
    ("a.tsv", "sentence\tlabel\na\t1\textra\n", "expected 2 fields", 2),
    ("a.tsv", "sentence\tlabel\na\t1\nno label\n", "expected 2 fields", 3),
    ("a.tsv", "sentence\tscore\na\t1\n", "no column 'label'", 1),
    ("a.tsv", "sentence\tlabel\n", "no examples", None),
    ("a.tsv", "", "file is empty", None),
    ("a.tsv", "sentence\tlabel\na\x00b\t1\n", "NUL byte", 2),
    ("a.jsonl", '{"sentence": "a", "label": 1}\n{"sentence": "b, "label": 0}\n', "not valid JSON", 2),
    ("a.jsonl", '["a", 1]\n', "expected a JSON object", 1),
    ("a.jsonl", '{"text": "a", "label": 1}\n', "missing field 'sentence'", 1),
    ("a.jsonl", '{"sentence": 3, "label": 1}\n', "must be a string", 1),
    ("a.csv", 'sentence,label\n"unclosed,1\n', "malformed CSV", None),
])
def test_malformed_input_names_file_and_line(tmp_path, name, content, message, line):
    path = write(tmp_path, name, content)
    with pytest.raises(DataError, match=message) as error:
        read_examples(path)
    assert path in str(error.value)
    if line is not None:
        assert f"{path}:{line}:" in str(error.value)


def test_skip_policy_drops_and_counts_bad_lines(tmp_path):
    path = write(tmp_path, "a.tsv", "sentence\tlabel\ngood\t1\nbroken\nbad\t0\nalso\tbroken\tx\n")
    examples = read_examples(path, on_bad_line="skip")
    assert examples.texts == ["good", "bad"]
    assert examples.report.skipped == 2
    assert f"{path}:3:" in examples.report.first_skipped


def test_csv_quoting_headerless_columns_and_jsonl_int_labels(tmp_path):
    csv_path = write(tmp_path, "a.csv", '"3","Title","a ""quoted""\nline"\n"1","T","plain"\n')
    examples = read_examples(csv_path, header=False, columns=["label", "title", "description"],
                             text_field="description")
    assert examples.texts == ['a "quoted"\nline', "plain"]
    assert examples.labels == ["3", "1"]
    assert examples.lines == [1, 3]
    jsonl = write(tmp_path, "a.jsonl", '{"sentence": "x", "label": 1}\n\n{"sentence": "y", "label": "0"}\n')
    assert read_examples(jsonl).labels == ["1", "0"]


def test_missing_file_directory_and_unknown_suffix(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        read_examples(str(tmp_path / "nope.tsv"))
    with pytest.raises(DataError, match="is a directory"):
        read_examples(str(tmp_path))
    with pytest.raises(DataError, match="set data.format"):
        read_examples(write(tmp_path, "a.data", "x"))
