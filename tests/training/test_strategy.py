import json
import subprocess
import sys

# Two logical CPU devices must be configured before TensorFlow starts, so this runs in a child.
SCRIPT = """
import json, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from keras_nlp_app.config import load_config
from keras_nlp_app.training.train import train
from tests.conftest import tiny_overrides
train_file, dev_file, root = sys.argv[1:4]
result = {}
for strategy in ("one_device", "mirrored"):
    cfg = load_config(["configs/sst2_lstm.yaml"], tiny_overrides(
        train_file, dev_file, **{"train.strategy": strategy, "train.batch_size": 16}))
    run_dir = train(cfg, run_dir=f"{root}/{strategy}")
    result[strategy] = json.load(open(f"{run_dir}/metrics.json"))
print(json.dumps(result))
"""


def test_mirrored_over_two_cpus_matches_one_device(easy_files, tmp_path):
    completed = subprocess.run([sys.executable, "-c", SCRIPT, *easy_files, str(tmp_path)],
                               capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert result["mirrored"]["replicas"] == 2 and result["mirrored"]["global_batch_size"] == 32
    assert result["one_device"]["replicas"] == 1
    assert result["mirrored"]["accuracy"] > 0.9
    assert abs(result["mirrored"]["accuracy"] - result["one_device"]["accuracy"]) <= 0.05
