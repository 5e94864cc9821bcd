"""Beam search at batch size: outputs checked against the full search, and sentences/s of the
exported SavedModel at batch 1 and 32; prints one JSON object.

- equality: every validation source of the run's data translated with beam search as it is
  now (a row stops once no live beam can beat its best ended one) and with the full search
  (every beam runs until it ends: the n-best search, best first), in this process; the count of
  outputs that differ.
- speed: the run exported to a SavedModel (beam search inside the graph), `serving_default` on
  the validation sources at batch 1 and batch 32, after one untimed pass over the same requests
  (so XLA's compilations for each new shape are not timed).
- greedy: the same sources translated greedily in this process, twice (the first pass compiles).
- `--outputs FILE` writes the beam search's outputs, one per line, and the greedy ones to
  FILE.greedy, to compare with another commit.

Usage:
    KNLP_DATA_DIR=../shared/data .venv/bin/python scripts/bench_beam.py [--run runs/multi30k_en_de]
"""

import argparse
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from _bench import texts_per_second  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default="runs/multi30k_en_de")
    parser.add_argument("--examples", type=int, default=0, help="validation sources compared (0: all)")
    parser.add_argument("--outputs", help="write the beam search's outputs here, one per line")
    args = parser.parse_args()

    from keras_nlp_app import runs
    from keras_nlp_app.export.saved_model import export_run
    from keras_nlp_app.tasks.seq2seq_graphs import translate

    run = runs.restore_run(args.run)
    _, validation = run.task.load_splits(run.cfg.data, run.cfg.train.seed)
    sources = validation.texts[:args.examples or None]
    beam, penalty = run.cfg.model.beam_size, run.cfg.model.length_penalty
    started = time.perf_counter()
    settled = translate(run.model, run.preprocessor, sources, beam_size=beam, length_penalty=penalty)
    settled_seconds = time.perf_counter() - started
    started = time.perf_counter()
    full = [best[0][0] for best in translate(run.model, run.preprocessor, sources, beam_size=beam,
                                             length_penalty=penalty, n_best=True)]
    full_seconds = time.perf_counter() - started
    greedy_seconds = []
    for _ in range(2):  # the first pass compiles each shape's greedy loop, the second does not
        started = time.perf_counter()
        greedy = translate(run.model, run.preprocessor, sources, beam_size=1)
        greedy_seconds.append(round(time.perf_counter() - started, 1))
    differ = sum(a != b for a, b in zip(settled, full))
    if args.outputs:
        with open(args.outputs, "w", encoding="utf-8") as handle:
            handle.writelines(line + "\n" for line in settled)
        with open(args.outputs + ".greedy", "w", encoding="utf-8") as handle:
            handle.writelines(line + "\n" for line in greedy)
    report = {"run": args.run, "beam_size": beam, "examples": len(sources),
              "outputs_differing_from_full_search": differ,
              "in_process_seconds": {"settled_rows_stop": round(settled_seconds, 1),
                                     "full_search": round(full_seconds, 1),
                                     "greedy_first_pass": greedy_seconds[0],
                                     "greedy": greedy_seconds[1]}}
    with tempfile.TemporaryDirectory() as folder:
        model_dir = export_run(args.run, os.path.join(folder, "model"))
        speed = texts_per_second(model_dir, sources, "output", {1: 64, 32: 8}, warm_up_each=True)
    report["saved_model"] = speed
    report["batch32_over_batch1"] = round(speed["batch32_sentences_per_s"]
                                          / speed["batch1_sentences_per_s"], 2)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
