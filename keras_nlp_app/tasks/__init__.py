"""The task registry: `TASKS` maps every valid `task:` value to its `Task` (tasks/base.py).

Importing this package registers the built-in tasks; `get_task(name)` is the one lookup, and an
unknown name is a config error that lists the registered ones.
"""

from keras_nlp_app.tasks import (  # noqa: F401
    classification,
    language_model,
    pretrain,
    qa,
    relation,
    seq2seq,
    tagging,
)
from keras_nlp_app.tasks.base import TASKS, Task, get_task, register

__all__ = ["TASKS", "Task", "get_task", "register"]
