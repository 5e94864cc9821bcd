"""One module per task; `TASKS` maps `cfg.task` to it."""

from keras_nlp_app.tasks import classification, language_model, seq2seq, tagging

TASKS = {"classification": classification, "lm": language_model, "seq2seq": seq2seq,
         "tagging": tagging}
