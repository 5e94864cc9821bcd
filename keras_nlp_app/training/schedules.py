"""Learning-rate schedules: linear warmup, then constant, cosine or linear decay."""

import math

import keras


@keras.saving.register_keras_serializable(package="keras_nlp_app")
class WarmupDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warmup to `peak` over `warmup_steps`, then `decay` (none | cosine | linear) to 0."""

    def __init__(self, peak, total_steps, warmup_steps=0, decay="none"):
        self.peak = float(peak)
        self.total_steps = max(int(total_steps), 1)
        self.warmup_steps = int(warmup_steps)
        self.decay = decay

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        warmup = keras.ops.minimum(1.0, (step + 1.0) / max(self.warmup_steps, 1))
        span = max(self.total_steps - self.warmup_steps, 1)
        progress = keras.ops.clip((step - self.warmup_steps) / span, 0.0, 1.0)
        if self.decay == "cosine":
            factor = 0.5 * (1.0 + keras.ops.cos(math.pi * progress))
        elif self.decay == "linear":
            factor = 1.0 - progress
        else:
            factor = 1.0
        return self.peak * keras.ops.minimum(warmup, factor) if self.warmup_steps else self.peak * factor

    def get_config(self):
        return {"peak": self.peak, "total_steps": self.total_steps,
                "warmup_steps": self.warmup_steps, "decay": self.decay}


def make_optimizer(train_cfg, total_steps):
    """The optimizer `train.optimizer` names, with the warmup/decay schedule."""
    rate = train_cfg.learning_rate
    if train_cfg.warmup_steps or train_cfg.decay != "none":
        rate = WarmupDecay(rate, total_steps, train_cfg.warmup_steps, train_cfg.decay)
    common = {"learning_rate": rate, "clipnorm": train_cfg.clipnorm}
    if train_cfg.optimizer == "adamw":
        return keras.optimizers.AdamW(weight_decay=train_cfg.weight_decay, **common)
    if train_cfg.optimizer == "sgd":
        return keras.optimizers.SGD(momentum=0.9, **common)
    return keras.optimizers.Adam(**common)
