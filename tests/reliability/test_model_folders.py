"""Broken model and run folders: each verb that reads one refuses it with exit 2 and one line
naming the folder or file, and changes nothing in it. The folders are made by breaking copies
of one tiny trained run and its export."""

import hashlib
import os
import shutil

import pytest

from keras_nlp_app.cli import main


def _snapshot(folder):
    """Every file under `folder` with its size and content hash."""
    found = {}
    for root, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                found[os.path.relpath(path, folder)] = hashlib.sha256(f.read()).hexdigest()
    return found


@pytest.fixture(scope="module")
def broken(trained_run, exported_versions, tmp_path_factory):
    """name -> (argv, folder that must stay unchanged, text the error must contain)."""
    root = tmp_path_factory.mktemp("broken")
    good = str(root / "good" / "1")  # a model folder holding version 1 only
    shutil.copytree(exported_versions[1], good)
    out = str(root / "never_written")

    def copy_of(source, name):
        target = str(root / name)
        shutil.copytree(source, target)
        return target

    no_graph = copy_of(os.path.dirname(good), "no_graph")
    os.remove(os.path.join(no_graph, "1", "saved_model.pb"))
    truncated = copy_of(os.path.dirname(good), "truncated_variables")
    data = [f for f in os.listdir(os.path.join(truncated, "1", "variables")) if ".data" in f][0]
    with open(os.path.join(truncated, "1", "variables", data), "r+b") as f:
        f.truncate(max(os.path.getsize(f.name) // 3, 1))
    not_a_number = str(root / "version_not_a_number")
    shutil.copytree(good, os.path.join(not_a_number, "latest"))
    bad_metadata = copy_of(os.path.dirname(good), "bad_metadata")
    with open(os.path.join(bad_metadata, "1", "assets", "metadata.json"), "w") as f:
        f.write("{not json")
    truncated_run = copy_of(trained_run, "truncated_checkpoint")
    checkpoint = os.path.join(truncated_run, "checkpoints", "best.weights.h5")
    with open(checkpoint, "r+b") as f:
        f.truncate(os.path.getsize(checkpoint) // 2)
    no_config = copy_of(trained_run, "run_without_config")
    os.remove(os.path.join(no_config, "config.yaml"))
    return {
        "SavedModel without saved_model.pb": (["predict", no_graph, "a fine film"], no_graph,
                                              "no_graph"),
        "truncated variables file": (["predict", truncated, "a fine film"], truncated,
                                     "truncated_variables"),
        "version folder that is not a number": (["predict", not_a_number, "a fine film"],
                                                not_a_number, "version_not_a_number"),
        "metadata that is not JSON": (["predict", bad_metadata, "a fine film"], bad_metadata,
                                      "metadata.json"),
        "classifier run given to generate": (["generate", trained_run, "--prompt", "a"],
                                             trained_run, trained_run),
        "truncated checkpoint, exported": (["export", truncated_run, "--output", out],
                                           truncated_run, "truncated_checkpoint"),
        "run folder without its config": (["evaluate", no_config], no_config,
                                          "run_without_config"),
    }, out


CASES = ["SavedModel without saved_model.pb", "truncated variables file",
         "version folder that is not a number", "metadata that is not JSON",
         "classifier run given to generate", "truncated checkpoint, exported",
         "run folder without its config"]


@pytest.mark.parametrize("case", CASES)
def test_broken_folder_is_refused_and_left_as_it_was(broken, case, capsys):
    cases, never_written = broken
    argv, folder, named = cases[case]
    before = _snapshot(folder)
    code = main(argv)
    stderr = capsys.readouterr().err
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert code == 2, stderr
    assert len(lines) == 1 and lines[0].startswith("knlp: error: ") and named in lines[0], stderr
    assert _snapshot(folder) == before
    assert not os.path.exists(never_written)
