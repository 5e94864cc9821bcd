import gzip
import hashlib

import pytest

from keras_nlp_app.data import datasets
from keras_nlp_app.errors import UserError

REQUIRED = ["sst2", "imdb", "ag_news", "ptb", "tinyshakespeare", "conll2003", "multi30k",
            "spa_eng", "aeslc", "dailydialog", "squad_v1.1"]


def test_required_datasets_are_registered_with_checksums():
    for name in REQUIRED:
        dataset = datasets.get_dataset(name)
        for specs in dataset.splits.values():
            for spec in specs:
                assert spec.url.startswith("https://")
                assert spec.sha256 or spec.md5


def test_unknown_dataset_and_split_list_the_valid_ones():
    with pytest.raises(UserError, match="known datasets: .*sst2"):
        datasets.get_dataset("sst3")
    with pytest.raises(UserError, match="its splits: train, validation"):
        datasets.split_paths("sst2", "test")


def test_data_dir_copy_is_found_first(tmp_path, monkeypatch):
    (tmp_path / "sst2").mkdir()
    (tmp_path / "sst2" / "dev.tsv").write_text("sentence\tlabel\nx\t1\n")
    monkeypatch.setenv("KNLP_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("KNLP_CACHE_DIR", str(tmp_path / "cache"))
    assert datasets.split_path("sst2", "validation") == str(tmp_path / "sst2" / "dev.tsv")
    info = datasets.describe("sst2")
    assert info["splits"]["train"]["found"] is None  # a split the copy lacks is reported


def test_missing_split_offline_is_one_line_naming_files_and_places(tmp_path, monkeypatch):
    monkeypatch.setenv("KNLP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("KNLP_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(UserError) as error:
        datasets.split_paths("sst2", "train", download=False)
    message = str(error.value)
    assert "\n" not in message
    assert "train.tsv" in message and str(tmp_path / "data" / "sst2") in message


def _register(monkeypatch, payload_file, digest, unpack=None):
    spec = datasets.DataFile("file.txt", payload_file.as_uri(), sha256=digest, unpack=unpack)
    fake = datasets.Dataset("fake", "lm", "txt", {"train": (spec,)}, "test double")
    monkeypatch.setitem(datasets.DATASETS, "fake", fake)


def test_download_checks_sha256_and_unpacks(tmp_path, monkeypatch):
    monkeypatch.delenv("KNLP_DATA_DIR", raising=False)
    monkeypatch.setenv("KNLP_CACHE_DIR", str(tmp_path / "cache"))
    content = b"hello world\n"
    source = tmp_path / "file.txt.gz"
    source.write_bytes(gzip.compress(content))
    _register(monkeypatch, source, hashlib.sha256(content).hexdigest(), unpack="gzip")
    path = datasets.split_path("fake", "train")
    assert open(path, "rb").read() == content


def test_download_with_wrong_checksum_is_refused_and_not_kept(tmp_path, monkeypatch):
    monkeypatch.delenv("KNLP_DATA_DIR", raising=False)
    monkeypatch.setenv("KNLP_CACHE_DIR", str(tmp_path / "cache"))
    source = tmp_path / "file.txt"
    source.write_bytes(b"tampered")
    _register(monkeypatch, source, "0" * 64)
    with pytest.raises(UserError, match="checksum mismatch"):
        datasets.split_path("fake", "train")
    assert not list((tmp_path / "cache" / "fake").iterdir())
