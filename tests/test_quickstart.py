import json
import os
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_quickstart_reaches_the_target_on_sst2(tmp_path):
    data_dir = os.environ.get("KNLP_DATA_DIR", "")
    if not os.path.isfile(os.path.join(data_dir, "sst2", "train.tsv")):
        pytest.skip("needs KNLP_DATA_DIR with sst2/")
    result = subprocess.run(
        [sys.executable, "-m", "keras_nlp_app", "quickstart", "--run-dir", str(tmp_path / "run"),
         "--output", str(tmp_path / "sentiment")], capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["accuracy"] >= 0.80
    assert summary["saved_model"].endswith(os.path.join("sentiment", "1"))
