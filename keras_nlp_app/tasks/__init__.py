"""One module per task; `TASKS` maps `cfg.task` to it."""

from keras_nlp_app.tasks import classification

TASKS = {"classification": classification}
