"""Count-based n-gram language models (numpy only; TensorFlow is imported only to export).

- `model.NGramModel`: train (MLE, add-k, interpolated modified Kneser-Ney), score, sample.
- `arpa.write_arpa` / `arpa.read_arpa`: interchange with KenLM and SRILM.
- `export.export_ngram`: a SavedModel scoring raw strings with lookup tables in the graph.
"""
