"""Pretraining and fine-tuning speed benchmark; prints one JSON object.

- masked-LM pretraining (configs/pretrain_imdb.yaml on the unlabeled IMDB reviews): training
  tokens/s (window tokens, padding included);
- fine-tuning on SST-2 (configs/sst2_finetune.yaml) with the backbone frozen, with LoRA (rank 8)
  on query and value or in every projection (lora_all), and in full: training examples/s, trainable parameters and peak resident memory.

Each case is a real `knlp train` run in a process of its own (so peak memory is its own), of two
epochs of `--steps` steps; the speed is the second epoch's (the first includes tracing).

Usage:
    KNLP_DATA_DIR=../shared/data .venv/bin/python scripts/bench_pretrain.py \
        [--preset runs/pretrain_imdb/preset] [--steps 60] [--cases mlm frozen lora lora_all full]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

RUN = """
import json, resource, sys
from keras_nlp_app.config import load_config
from keras_nlp_app.training.train import train
recipe, run_dir, overrides = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
cfg = load_config([recipe], overrides)
train(cfg, run_dir=run_dir)
metrics = json.load(open(run_dir + "/metrics.json"))
print(json.dumps({"seconds": metrics["history"][-1]["train_seconds"],
                  "trainable_parameters": metrics["trainable_parameters"],
                  "parameters": metrics["parameters"],
                  "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                  "batch_size": cfg.train.batch_size,
                  "sequence_length": cfg.tokenizer.sequence_length}))
"""

COMMON = ["train.epochs=2", "train.verbose=0", "train.backup_every_steps=0"]
CASES = {
    "mlm": ("configs/pretrain_imdb.yaml", ["data.holdout_fraction=0.002", "train.monitor=loss",
                                           "data.max_train_examples=3000"]),
    "frozen": ("configs/sst2_finetune.yaml", ["model.finetune=frozen"]),
    "lora": ("configs/sst2_finetune.yaml", ["model.finetune=lora", "model.lora_rank=8"]),
    "lora_all": ("configs/sst2_finetune.yaml", ["model.finetune=lora_all", "model.lora_rank=8"]),
    "full": ("configs/sst2_finetune.yaml", ["model.finetune=full"]),
}


def run_case(name, steps, preset, folder):
    recipe, overrides = CASES[name]
    overrides = overrides + COMMON + [f"train.steps_per_epoch={steps}"]
    if name != "mlm":
        overrides += [f"model.backbone={preset}", "data.validation_split=null",
                      "train.monitor=loss"]
    done = subprocess.run([sys.executable, "-c", RUN, recipe, os.path.join(folder, name),
                           json.dumps(overrides)], capture_output=True, text=True,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    if done.returncode != 0:
        raise SystemExit(f"{name}: {done.stderr.strip()[-1500:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    per_second = steps * result["batch_size"] / result["seconds"]
    if name == "mlm":
        result["tokens_per_s"] = round(per_second * result["sequence_length"])
    else:
        result["examples_per_s"] = round(per_second, 1)
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="runs/pretrain_imdb/preset")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    args = parser.parse_args()
    if any(c != "mlm" for c in args.cases) and not os.path.isdir(args.preset):
        raise SystemExit(f"{args.preset}: no preset; run knlp train configs/pretrain_imdb.yaml "
                         f"first or pass --preset")
    with tempfile.TemporaryDirectory() as folder:
        results = {name: run_case(name, args.steps, args.preset, folder) for name in args.cases}
    if "full" in results:
        for name in ("frozen", "lora", "lora_all"):
            if name in results:
                results[name]["speed_vs_full"] = round(
                    results[name]["examples_per_s"] / results["full"]["examples_per_s"], 2)
                results[name]["memory_vs_full"] = round(
                    results[name]["peak_rss_mb"] / results["full"]["peak_rss_mb"], 2)
    print(json.dumps({"steps_per_epoch": args.steps, "preset": args.preset, **results}, indent=2))


if __name__ == "__main__":
    main()
