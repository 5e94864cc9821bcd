"""Keeps TensorFlow's C++ start-up lines (absl, oneDNN, cuInit, cudart) off stderr.

`TF_CPP_MIN_LOG_LEVEL` and Python's logging do not reach them: absl writes them to file
descriptor 2 before its logging is initialized. So the CLI points descriptor 2 at a pipe and a
thread copies every line to the real stderr except native log lines (`I0000 00:00:...
file.cc:12] ...` and absl's "before InitializeLog" notice). Python's own messages, warnings and
tracebacks pass through unchanged.
"""

import atexit
import os
import re
import threading

NATIVE_LINE = re.compile(
    rb"^(?:[IWEF]\d{4} [\d:.]+\s+\d+ [\w./+-]+:\d+\]"
    rb"|WARNING: All log messages before absl::InitializeLog\(\) is called)")

_installed = None


def is_native_log_line(line):
    """Whether one line of stderr (bytes) is a TensorFlow/absl C++ log line."""
    return bool(NATIVE_LINE.match(line))


class _StderrFilter:
    def __init__(self):
        self.real = os.dup(2)
        read_end, write_end = os.pipe()
        os.dup2(write_end, 2)
        os.close(write_end)
        self.read_end = read_end
        self.thread = threading.Thread(target=self._copy, name="native-log-filter", daemon=True)
        self.thread.start()

    def _copy(self):
        pending = b""
        with os.fdopen(self.read_end, "rb", buffering=0) as pipe:
            while True:
                chunk = pipe.read(65536)
                if not chunk:
                    break
                pending += chunk
                *lines, pending = pending.split(b"\n")
                kept = b"".join(line + b"\n" for line in lines if not is_native_log_line(line))
                if kept:
                    os.write(self.real, kept)
        if pending and not is_native_log_line(pending):
            os.write(self.real, pending)

    def close(self):
        import sys

        for stream in (sys.stderr, sys.__stderr__):
            try:
                stream.flush()
            except (AttributeError, ValueError, OSError):
                pass
        os.dup2(self.real, 2)  # closes the pipe's last write end: the thread drains and ends
        self.thread.join(timeout=5)


def hide_native_logs():
    """Filters native log lines out of this process's stderr (and its children's) until exit."""
    global _installed
    if _installed is None:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        _installed = _StderrFilter()
        atexit.register(_installed.close)
    return _installed
