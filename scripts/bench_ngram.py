"""N-gram benchmark on Penn Treebank; prints one JSON object.

Whole-process figures, as a user sees them: `knlp ngram train` (wall time, peak memory; also
with `--arpa`, as lmplz writes ARPA) and
`knlp ngram score` (tokens/s), for us and — where installed — KenLM's `lmplz`/`query` binaries
(`--kenlm-bin DIR`) and the `kenlm` Python module, plus NLTK's `KneserNeyInterpolated` on a
subset of the training data (it is too slow for all of it; the subset size is in the output).
Ratios are computed within this one run. Also the valid perplexity of every order and smoothing.

`--growth 1 4 16` measures instead how build time and peak memory grow with the corpus, ours
beside lmplz's: PTB train, then PTB followed by the other staged corpora's text (lower-cased,
words and punctuation split) until the corpus holds that many times PTB's tokens.

Usage:
    KNLP_DATA_DIR=../shared/data .venv/bin/python scripts/bench_ngram.py [--kenlm-bin DIR]
        [--nltk-sentences 5000] [--orders 2 3 4 5]
    KNLP_DATA_DIR=../shared/data .venv/bin/python scripts/bench_ngram.py --kenlm-bin DIR --growth 1 4 16
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

# Our commands run as on an installed package, with Python's bytecode cache: a shell that sets
# PYTHONDONTWRITEBYTECODE would otherwise time the compilation of our modules on every run.
INSTALLED_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def run_with_memory(command, stdin_path=None):
    """Runs a command; returns (wall seconds, peak resident memory in MiB, stdout)."""
    stdin = open(stdin_path, "rb") if stdin_path else subprocess.DEVNULL
    started = time.perf_counter()
    process = subprocess.Popen(command, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env=INSTALLED_ENV)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    out, err = process.stdout.read(), process.stderr.read()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{command[0]} failed: {err.decode(errors='replace')[-500:]}")
    return wall, usage.ru_maxrss / 1024, out.decode(errors="replace")


def count_tokens(path):
    with open(path, encoding="utf-8") as f:
        return sum(len(line.split()) + 1 for line in f if line.strip())


def bench_ours(train, valid, workdir, knlp):
    model = os.path.join(workdir, "ours5")
    warm = os.path.join(workdir, "warm")  # fills the bytecode cache, as an install does
    run_with_memory([knlp, "ngram", "train", valid, "--order", "2", "--output", warm, "--arpa"])
    run_with_memory([knlp, "ngram", "score", warm, "--data", valid])
    wall, memory, out = run_with_memory([knlp, "ngram", "train", train, "--order", "5", "--output", model])
    result = {"train_wall_s": round(wall, 2), "train_peak_mib": round(memory)}
    wall, memory, out = run_with_memory([knlp, "ngram", "train", train, "--order", "5", "--output",
                                         model, "--arpa"])
    result.update({"train_with_arpa_wall_s": round(wall, 2), "train_with_arpa_peak_mib": round(memory)})
    for name, path in (("valid", valid), ("train", train)):
        wall, memory, out = run_with_memory([knlp, "ngram", "score", model, "--data", path, "--json"])
        report = json.loads(out.strip().splitlines()[-1])
        result[f"score_{name}_wall_s"] = round(wall, 2)
        result[f"score_{name}_tokens_per_s"] = round(report["tokens"] / wall)
        if name == "valid":
            result["valid_perplexity"] = report["perplexity"]
    return result, model + ".arpa"


def without_literal_unk(path, workdir):
    """A copy of a PTB file with its literal `<unk>` renamed: lmplz refuses `<unk>` in a corpus
    (we treat it as the unknown-word token, KenLM would need --skip_symbols, which deletes it)."""
    target = os.path.join(workdir, os.path.basename(path) + ".renamed")
    with open(path, encoding="utf-8") as f, open(target, "w", encoding="utf-8") as out:
        out.write(f.read().replace("<unk>", "UNKWORD"))
    return target


def bench_kenlm_binaries(bin_dir, train, valid, workdir):
    lmplz, query = os.path.join(bin_dir, "lmplz"), os.path.join(bin_dir, "query")
    train, valid = without_literal_unk(train, workdir), without_literal_unk(valid, workdir)
    arpa = os.path.join(workdir, "kenlm5.arpa")
    wall, memory, _ = run_with_memory([lmplz, "-o", "5", "-S", "1G", "-T", workdir, "--text", train,
                                       "--arpa", arpa])
    result = {"lmplz_wall_s": round(wall, 2), "lmplz_peak_mib": round(memory), "arpa": arpa,
              "renamed_valid": valid}
    for name, path in (("valid", valid), ("train", train)):
        wall, _, out = run_with_memory([query, "-v", "summary", arpa], stdin_path=path)
        result[f"query_{name}_wall_s"] = round(wall, 2)
        result[f"query_{name}_tokens_per_s"] = round(count_tokens(path) / wall)
        if name == "valid":
            for line in out.splitlines():
                if line.startswith("Perplexity including OOVs:"):
                    result["valid_perplexity"] = float(line.split()[-1])
    return result


def bench_kenlm_module(arpa, valid):
    import kenlm

    model = kenlm.Model(arpa)
    with open(valid, encoding="utf-8") as f:
        lines = [l.strip() for l in f if l.strip()]
    started = time.perf_counter()
    total = sum(model.score(line, bos=True, eos=True) for line in lines)
    wall = time.perf_counter() - started
    tokens = sum(len(l.split()) + 1 for l in lines)
    return {"valid_perplexity": 10 ** (-total / tokens), "score_tokens_per_s": round(tokens / wall)}


def bench_nltk(train, valid, sentences):
    from nltk.lm import KneserNeyInterpolated
    from nltk.lm.preprocessing import padded_everygram_pipeline

    with open(train, encoding="utf-8") as f:
        data = [l.split() for l in f if l.strip()][:sentences]
    started = time.perf_counter()
    grams, vocab = padded_everygram_pipeline(5, data)
    model = KneserNeyInterpolated(5)
    model.fit(grams, vocab)
    fit = time.perf_counter() - started
    with open(valid, encoding="utf-8") as f:
        probe = [l.split() for l in f if l.strip()][:50]
    started = time.perf_counter()
    tokens = 0
    for sentence in probe:
        padded = ["<s>"] * 4 + sentence + ["</s>"]
        for i in range(4, len(padded)):
            model.logscore(padded[i], padded[i - 4:i])
            tokens += 1
    return {"train_sentences": len(data), "fit_s": round(fit, 2),
            "score_tokens_per_s": round(tokens / (time.perf_counter() - started))}


GROWTH_SOURCES = ("imdb/unsup.jsonl", "imdb/train.jsonl", "aeslc/train.jsonl", "squad_v1.1/train-v1.1.rebuilt.json",
                  "dailydialog/dialogues_train.txt", "spa_eng/spa.txt", "multi30k/train.en",
                  "multi30k/train.de", "tinyshakespeare/input.txt", "sst2/train.tsv")
JSONL_TEXT_FIELDS = ("text", "email", "subject_line")
WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?|[^\w\s]")


def other_text_lines(data):
    """Lines of the staged corpora other than PTB, lower-cased and split into words and
    punctuation; JSON(L) files give the lines of their text fields (SQuAD: contexts, questions)."""
    for relative in GROWTH_SOURCES:
        path = os.path.join(data, relative)
        if not os.path.exists(path):
            continue
        with open(path, encoding="utf-8", errors="replace") as f:
            if relative.endswith(".json"):
                article_texts = (p["context"] + "\n" + "\n".join(q["question"] for q in p["qas"])
                                 for a in json.load(f)["data"] for p in a["paragraphs"])
                lines = (line for text in article_texts for line in text.splitlines())
            elif relative.endswith(".jsonl"):
                lines = (text_line for line in f for key, value in json.loads(line).items()
                         if key in JSONL_TEXT_FIELDS for text_line in value.splitlines())
            else:
                lines = f
            for line in lines:
                words = WORD.findall(line.lower().replace("<unk>", " "))
                if words:
                    yield " ".join(words)


def growth_corpus(ptb_train, data, scale, workdir):
    """PTB train followed by other staged text up to `scale` × PTB's tokens; (path, tokens)."""
    tokens = count_tokens(ptb_train)
    target_tokens = tokens * scale
    path = os.path.join(workdir, f"growth_x{scale}.txt")
    shutil.copyfile(ptb_train, path)
    with open(path, "a", encoding="utf-8") as out:
        for line in other_text_lines(data):
            if tokens >= target_tokens:
                break
            out.write(line + "\n")
            tokens += len(line.split()) + 1
    if tokens < target_tokens:
        raise SystemExit(f"only {tokens} tokens of staged text for scale {scale} ({target_tokens} needed)")
    return path, tokens


def growth_curve(ptb_train, data, scales, bin_dir, workdir, knlp):
    """Build wall time and peak memory of a 5-gram, ours (no ARPA, as `knlp ngram train` does by
    default) and lmplz's (`-o 5 -S 1G`, ARPA out), for each corpus scale."""
    rows = []
    for scale in scales:
        corpus, tokens = growth_corpus(ptb_train, data, scale, workdir)
        row = {"scale": scale, "tokens": tokens}
        wall, memory, _ = run_with_memory([knlp, "ngram", "train", corpus, "--order", "5",
                                           "--output", os.path.join(workdir, "growth5")])
        row.update({"ours_wall_s": round(wall, 2), "ours_peak_mib": round(memory)})
        if bin_dir:
            renamed = without_literal_unk(corpus, workdir)
            wall, memory, _ = run_with_memory([os.path.join(bin_dir, "lmplz"), "-o", "5", "-S", "1G",
                                               "-T", workdir, "--text", renamed, "--arpa",
                                               os.path.join(workdir, "growth5.arpa")])
            row.update({"lmplz_wall_s": round(wall, 2), "lmplz_peak_mib": round(memory),
                        "wall_ours_over_lmplz": round(row["ours_wall_s"] / wall, 2),
                        "memory_ours_over_lmplz": round(row["ours_peak_mib"] / memory, 2)})
        for leftover in os.listdir(workdir):
            os.remove(os.path.join(workdir, leftover))
        rows.append(row)
    return rows


def perplexity_table(train, valid, orders):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from keras_nlp_app.ngram.estimate import train_model
    from keras_nlp_app.ngram.io import read_sentences
    from keras_nlp_app.ngram.model import perplexity_report

    train_s, valid_s = read_sentences(train), read_sentences(valid)
    table = {}
    for order in orders:
        for smoothing, k in (("kneser_ney", None), ("add_k", 0.01), ("add_k", 1.0)):
            name = f"{smoothing}{'' if k is None else f'_k{k}'}_order{order}"
            model = train_model(train_s, order=order, smoothing=smoothing, k=k or 1.0)
            table[name] = round(perplexity_report(model, valid_s)["perplexity"], 3)
    return table


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kenlm-bin", help="folder holding KenLM's lmplz and query binaries")
    parser.add_argument("--nltk-sentences", type=int, default=5000)
    parser.add_argument("--orders", type=int, nargs="+", default=[2, 3, 4, 5])
    parser.add_argument("--growth", type=int, nargs="+", metavar="SCALE",
                        help="only the growth curve: build time and memory at these multiples of PTB")
    args = parser.parse_args()
    data = os.environ.get("KNLP_DATA_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data"))
    train, valid = os.path.join(data, "ptb", "ptb.train.txt"), os.path.join(data, "ptb", "ptb.valid.txt")
    knlp = shutil.which("knlp", path=os.path.dirname(sys.executable)) or "knlp"
    if args.growth:
        with tempfile.TemporaryDirectory() as workdir:
            print(json.dumps({"growth": growth_curve(train, data, args.growth, args.kenlm_bin, workdir, knlp)}))
        return
    result = {}
    with tempfile.TemporaryDirectory() as workdir:
        result["ours"], our_arpa = bench_ours(train, valid, workdir, knlp)
        if args.kenlm_bin:
            result["kenlm_binaries"] = bench_kenlm_binaries(args.kenlm_bin, train, valid, workdir)
            k = result["kenlm_binaries"]
            result["ratios"] = {
                "train_wall_ours_over_lmplz": round(result["ours"]["train_wall_s"] / k["lmplz_wall_s"], 2),
                "train_memory_ours_over_lmplz": round(result["ours"]["train_peak_mib"] / k["lmplz_peak_mib"], 2),
                "train_with_arpa_wall_ours_over_lmplz": round(
                    result["ours"]["train_with_arpa_wall_s"] / k["lmplz_wall_s"], 2),
                "score_speed_ours_over_query": round(
                    result["ours"]["score_train_tokens_per_s"] / k["query_train_tokens_per_s"], 2),
                "valid_perplexity_ours_over_kenlm": round(
                    result["ours"]["valid_perplexity"] / k["valid_perplexity"], 6),
            }
            from keras_nlp_app.ngram.io import load_model, read_sentences
            from keras_nlp_app.ngram.model import perplexity_report

            theirs = load_model(k["arpa"])
            result["kenlm_arpa_scored_by_us"] = perplexity_report(
                theirs, read_sentences(k["renamed_valid"]))["perplexity"]
            del k["arpa"], k["renamed_valid"]
        try:
            result["kenlm_module_on_our_arpa"] = bench_kenlm_module(our_arpa, valid)
        except ImportError:
            result["kenlm_module_on_our_arpa"] = "kenlm not installed (pip install kenlm)"
        try:
            result["nltk"] = (bench_nltk(train, valid, args.nltk_sentences)
                              if args.nltk_sentences else "not run (--nltk-sentences 0)")
            if args.nltk_sentences:
                result["nltk"]["note"] = "fit on a subset (train_sentences); scoring 50 valid sentences"
        except ImportError:
            result["nltk"] = "nltk not installed (pip install nltk)"
    result["valid_perplexity_by_model"] = perplexity_table(train, valid, args.orders)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
