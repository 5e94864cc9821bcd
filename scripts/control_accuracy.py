"""Control accuracy of a conditioned LM: generate N texts per condition, classify them with our
own classifier, and report the share classified as the requested condition (95% interval) beside
distinct-1/2 (Li et al. 2016: distinct n-grams over all n-grams of a condition's texts); prints
one JSON object.

The classifier's labels are the condition field's raw values; the LM's `data.condition_names`
maps them to the condition names (e.g. "1" → positive).

Usage:
    KNLP_DATA_DIR=../shared/data .venv/bin/python scripts/control_accuracy.py \\
        --lm runs/imdb_sentiment_lm --classifier runs/imdb [--per-condition 500]
"""

import argparse
import json
import math
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def interval(share, n):
    half = 1.96 * math.sqrt(share * (1 - share) / n)
    return [round(share - half, 4), round(share + half, 4)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lm", required=True, help="conditioned LM run folder or SavedModel")
    parser.add_argument("--classifier", required=True, help="classifier run folder or SavedModel")
    parser.add_argument("--per-condition", type=int, default=500)
    parser.add_argument("--max-new-tokens", type=int, default=60)
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--top-k", type=int, default=40)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--samples", type=int, default=3, help="texts per condition in the output")
    args = parser.parse_args()

    from keras_nlp_app.inference import describe, generate, load_predictor
    from keras_nlp_app.metrics import distinct_n

    lm = describe(args.lm)
    names = {str(v): str(k) for k, v in lm.run_config.data.condition_names.items()}
    classifier = load_predictor(args.classifier)
    labels = list(classifier.space.labels)
    report = {"lm": args.lm, "classifier": args.classifier, "settings": {
        "per_condition": args.per_condition, "max_new_tokens": args.max_new_tokens,
        "temperature": args.temperature, "top_k": args.top_k, "seed": args.seed},
        "conditions": {}}
    correct_all = total_all = 0
    for condition in lm.space:
        wanted = names.get(condition, condition)
        if wanted not in labels:
            raise SystemExit(f"condition {condition!r} (label {wanted!r}) is not one of the "
                             f"classifier's labels {labels}")
        started, texts = time.perf_counter(), []
        for start in range(0, args.per_condition, args.batch):
            count = min(args.batch, args.per_condition - start)
            texts += generate(lm, [""] * count, condition=condition,
                              max_new_tokens=args.max_new_tokens, strategy="sample",
                              temperature=args.temperature, top_k=args.top_k,
                              seed=args.seed + start)
        seconds = time.perf_counter() - started
        predicted = classifier.predict({"text": texts})["label"]
        correct = sum(p.decode() == wanted for p in predicted)
        correct_all, total_all = correct_all + correct, total_all + len(texts)
        share = correct / len(texts)
        report["conditions"][condition] = {
            "control_accuracy": round(share, 4), "interval95": interval(share, len(texts)),
            "distinct_1": distinct_n(texts, 1), "distinct_2": distinct_n(texts, 2),
            "mean_words": round(sum(len(t.split()) for t in texts) / len(texts), 1),
            "generation_seconds": round(seconds, 1), "samples": texts[:args.samples]}
    share = correct_all / total_all
    report["control_accuracy"] = round(share, 4)
    report["interval95"] = interval(share, total_all)
    print(json.dumps(report, ensure_ascii=False))


if __name__ == "__main__":
    main()
