"""One way to write a file so that a crash never leaves a half-written one where a good one was.

Every file the package writes goes through `atomic_path`: the content is written under a
temporary name beside the target, then renamed over it in one step (`os.replace` is atomic on
POSIX and Windows within a file system). The temporary name keeps the target's suffix, so
writers that look at it (Keras' `.weights.h5`, numpy's `.npz`) accept it.
"""

import contextlib
import json
import os
import shutil


def _temporary_name(path):
    folder, name = os.path.split(path)
    return os.path.join(folder, f".tmp-{os.getpid()}-{name}")


@contextlib.contextmanager
def atomic_path(path):
    """Yields a temporary path to write; renamed to `path` if the block succeeds, else removed.

    Example:
        with atomic_path("checkpoints/best.weights.h5") as tmp:
            model.save_weights(tmp)
    """
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = _temporary_name(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
        elif os.path.exists(tmp):
            os.remove(tmp)


def write_text(path, text):
    """Writes UTF-8 text to `path` atomically."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write(text)


def write_bytes(path, data):
    """Writes bytes to `path` atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data)


def write_json(path, payload, **dump_options):
    """Writes `payload` as JSON (indented, with a final newline) to `path` atomically."""
    options = {"indent": 2, **dump_options}
    write_text(path, json.dumps(payload, **options) + "\n")


@contextlib.contextmanager
def atomic_folder(path):
    """Yields an empty staging folder beside `path`; when the block succeeds it replaces
    `path` (the old folder is moved aside first and removed after), else it is removed. A crash
    leaves the old folder or the new one in place, never a half-written one.

    Example:
        with atomic_folder("runs/x/preset") as staging:
            backbone.save_to_preset(staging)
    """
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    staging = _temporary_name(path)
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(staging)
    try:
        yield staging
        previous = _temporary_name(path) + ".old"
        if os.path.exists(path):
            os.replace(path, previous)
        os.replace(staging, path)
        shutil.rmtree(previous, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
