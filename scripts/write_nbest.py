"""Writes a seq2seq run's beam-search n-best lists as `knlp rescore` JSONL: one source per line,
`{"id", "hypotheses": [{"text", "score"}], "references"}`, the score being the beam's
length-normalized log-probability (GNMT penalty of the run's config), best first.

Usage (Multi30k validation split in two halves: one to tune the rescoring weights on, one to
report on):
    .venv/bin/python scripts/write_nbest.py --run runs/multi30k_en_de --beam-size 8 \\
        --source ../shared/data/multi30k/val.en --references ../shared/data/multi30k/val.de \\
        --output /tmp/val.nbest.jsonl
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="seq2seq run folder")
    parser.add_argument("--source", required=True, help="source sentences, one per line")
    parser.add_argument("--references", help="reference translations, one per line")
    parser.add_argument("--beam-size", type=int, default=8)
    parser.add_argument("--output", required=True)
    args = parser.parse_args()

    from keras_nlp_app.data.readers import read_text
    from keras_nlp_app.runs import restore_run
    from keras_nlp_app.tasks.seq2seq_graphs import translate
    from keras_nlp_app.utils import atomic

    sources = read_text(args.source).splitlines()
    references = read_text(args.references).splitlines() if args.references else None
    if references is not None and len(references) != len(sources):
        raise SystemExit(f"{args.references}: {len(references)} lines for {len(sources)} sources")
    run = restore_run(args.run)
    started = time.perf_counter()
    lists = translate(run.model, run.preprocessor, sources, beam_size=args.beam_size,
                      length_penalty=run.cfg.model.length_penalty, n_best=True)
    with atomic.atomic_path(args.output) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for i, found in enumerate(lists):
            record = {"id": str(i + 1),
                      "hypotheses": [{"text": text, "score": round(float(score), 5)}
                                     for text, score in found]}
            if references is not None:
                record["references"] = [references[i]]
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    print(json.dumps({"lists": len(lists), "beam_size": args.beam_size, "output": args.output,
                      "seconds": round(time.perf_counter() - started, 1)}))


if __name__ == "__main__":
    main()
