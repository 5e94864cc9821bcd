import os
import subprocess
import sys

import numpy as np

from keras_nlp_app.ngram.estimate import train_model
from keras_nlp_app.ngram.export import export_ngram
from tests.ngram.test_model import random_corpus

LOAD = """
import json, sys
import tensorflow as tf
out = tf.saved_model.load(sys.argv[1]).signatures["serving_default"](text=tf.constant(json.loads(sys.argv[2])))
print(json.dumps({k: v.numpy().tolist() for k, v in out.items()}))
"""


def test_exported_ngram_model_scores_raw_strings_like_numpy(tmp_path):
    import json

    model = train_model(random_corpus(400, 9), order=3)
    version_dir = export_ngram(model, str(tmp_path / "lm"))
    assert os.path.basename(version_dir) == "1"
    texts = [" ".join(s) for s in random_corpus(20, 10)] + ["", "a never-seen-word b"]
    result = subprocess.run([sys.executable, "-c", LOAD, version_dir, json.dumps(texts)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    served = json.loads(result.stdout.strip().splitlines()[-1])
    expected = model.sentence_scores([t.split() for t in texts])
    np.testing.assert_allclose(served["log_prob"], [e["ln_prob"] for e in expected], rtol=1e-5)
    assert served["num_tokens"] == [e["tokens"] for e in expected]
