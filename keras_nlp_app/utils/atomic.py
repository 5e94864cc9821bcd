"""One way to write a file so that a crash never leaves a half-written one where a good one was.

Every file the package writes goes through `atomic_path`: the content is written under a
temporary name beside the target, flushed to disk (fsync), then renamed over it in one step
(`os.replace` is atomic on POSIX and Windows within a file system), and the folder's entry is
flushed too. The temporary name keeps the target's suffix, so writers that look at it (Keras'
`.weights.h5`, numpy's `.npz`) accept it. A write that fails because the disk is full or
read-only is a `UserError` naming the target; the previous file is untouched.
"""

import contextlib
import errno
import json
import os
import shutil

from keras_nlp_app.errors import UserError

_DISK_ERRORS = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is exceeded",
                errno.EROFS: "the file system is read-only", errno.EACCES: "permission denied"}


def _disk_problem(exc):
    """What went wrong when `exc` (from Python, h5py or TensorFlow) is the disk's doing."""
    if isinstance(exc, OSError) and exc.errno in _DISK_ERRORS:
        return _DISK_ERRORS[exc.errno]
    text = str(exc)
    for number, problem in _DISK_ERRORS.items():
        if os.strerror(number) in text:
            return problem
    return None


def refuse_disk_error(path, exc):
    """Raises a UserError naming `path` when `exc` is the disk's doing (full, read-only, no
    permission); otherwise returns, and the caller re-raises `exc`."""
    problem = _disk_problem(exc)
    if problem:
        raise UserError(f"{path}: cannot write it: {problem}; the previous version, if any, is "
                        f"unchanged") from None


def sync_tree(path):
    """Flushes a written file, or every file of a written folder, and the folder entries."""
    if os.path.isdir(path):
        for root, _, files in os.walk(path):
            for name in files:
                sync_tree(os.path.join(root, name))
            _sync_folder(root)
        return
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def _sync_folder(folder):
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:  # some platforms cannot open folders; the rename is still atomic
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def _make_parent(path):
    """Creates the folder `path` goes in; a disk that refuses is a UserError naming `path`."""
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        refuse_disk_error(path, exc)
        raise
    sweep_stale(folder)


def _temporary_name(path):
    folder, name = os.path.split(path)
    return os.path.join(folder, f".tmp-{os.getpid()}-{name}")


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def sweep_stale(folder):
    """Removes the temporary files and folders (`.tmp-PID-...`) that processes which no longer
    run left in `folder` when they were killed mid-write; those of live processes stay."""
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        if not name.startswith(".tmp-"):
            continue
        pid = name[len(".tmp-"):].split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid() or _alive(int(pid)):
            continue
        path = os.path.join(folder, name)
        if os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                os.remove(path)


@contextlib.contextmanager
def atomic_path(path):
    """Yields a temporary path to write; renamed to `path` if the block succeeds, else removed.

    Example:
        with atomic_path("checkpoints/best.weights.h5") as tmp:
            model.save_weights(tmp)
    """
    _make_parent(path)
    tmp = _temporary_name(path)
    try:
        try:
            yield tmp
            sync_tree(tmp)
            os.replace(tmp, path)
            _sync_folder(os.path.dirname(os.path.abspath(path)))
        except Exception as exc:
            refuse_disk_error(path, exc)
            raise
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
    _make_parent(path)
    staging = _temporary_name(path)
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(staging)
    try:
        try:
            yield staging
            sync_tree(staging)
        except Exception as exc:
            refuse_disk_error(path, exc)
            raise
        previous = _temporary_name(path) + ".old"
        if os.path.exists(path):
            os.replace(path, previous)
        os.replace(staging, path)
        _sync_folder(os.path.dirname(os.path.abspath(path)))
        shutil.rmtree(previous, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
