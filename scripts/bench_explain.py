"""How long `knlp explain` takes once the model has loaded; prints one JSON object.

For each run folder: the seconds to restore it (config, tokenizer, model, best weights), then
integrated gradients (50 steps) for one sentence — the first call (which traces the model) and
the median of the next ones — and the page with its PNG written, as `knlp explain` does.

Usage:
    .venv/bin/python scripts/bench_explain.py [--runs runs/sst2 runs/conll2003_gru]
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

SENTENCES = {
    "classification": "an utterly charming and hilarious film that reminds us why we go to the movies",
    "tagging": "John Smith flew from Paris to Berlin with Lufthansa on Monday .",
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", nargs="+", default=["runs/sst2", "runs/conll2003_gru"])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    from keras_nlp_app import runs
    from keras_nlp_app.inspection import pages
    from keras_nlp_app.inspection.explain import Explainer
    from keras_nlp_app.utils import atomic

    report = {}
    for run_dir in args.runs:
        started = time.perf_counter()
        run = runs.restore_run(run_dir)
        restored = time.perf_counter() - started
        explainer = Explainer(run)
        text = SENTENCES[run.cfg.task]
        started = time.perf_counter()
        explainer.explain(text)
        first = time.perf_counter() - started
        warm, written = [], []
        with tempfile.TemporaryDirectory() as folder:
            for _ in range(args.repeats):
                started = time.perf_counter()
                explanation = explainer.explain(text)
                warm.append(time.perf_counter() - started)
                atomic.write_bytes(os.path.join(folder, "x.png"),
                                   pages.explanation_figure_png(explanation))
                atomic.write_text(os.path.join(folder, "x.html"), pages.explanations_page([explanation]))
                written.append(time.perf_counter() - started)
        report[run_dir] = {"task": run.cfg.task, "model": run.cfg.model.name,
                           "tokens": len(explanation.tokens), "rows": len(explanation.classes),
                           "restore_seconds": round(restored, 2),
                           "first_explain_seconds": round(first, 3),
                           "explain_seconds_p50": round(statistics.median(warm), 3),
                           "explain_and_page_seconds_p50": round(statistics.median(written), 3)}
    print(json.dumps(report))


if __name__ == "__main__":
    main()
