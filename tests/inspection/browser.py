"""Headless Chromium (Debian's package) for tests that check a page renders as people see it."""

import os
import shutil
import subprocess
import tempfile

import pytest

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--allow-file-access-from-files"]


def chromium():
    """The browser's path; the test is skipped where none is installed (.ci/run installs it)."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("no Chromium here (apt-get install chromium); .ci/run installs it")


def render(page, *, screenshot=None, size=(1100, 900)):
    """The DOM after Chromium loaded `page` (a file), and a PNG screenshot if asked for."""
    browser = chromium()
    with tempfile.TemporaryDirectory() as profile:
        common = [browser, *FLAGS, f"--user-data-dir={profile}", f"--window-size={size[0]},{size[1]}"]
        url = "file://" + os.path.abspath(page)
        dom = subprocess.run([*common, "--dump-dom", url], capture_output=True, text=True,
                             timeout=120, check=True).stdout
        if screenshot:
            subprocess.run([*common, f"--screenshot={os.path.abspath(screenshot)}", url],
                           capture_output=True, timeout=120, check=True)
    return dom
