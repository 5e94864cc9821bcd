"""Learning-rate schedules: linear warmup, then constant, cosine, linear or per-epoch step decay."""

import math

import keras


@keras.saving.register_keras_serializable(package="keras_nlp_app")
class WarmupDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warmup to `peak` over `warmup_steps`, then `decay`: none, cosine or linear (to
    `floor` × peak at the last step), or step (× `decay_rate` every epoch from epoch
    `decay_start_epoch`, counting from 1: the Zaremba / TensorFlow PTB schedule), or noam
    (peak × sqrt(warmup / step) after warmup: Vaswani et al.'s inverse square root)."""

    def __init__(self, peak, total_steps, warmup_steps=0, decay="none", floor=0.0,
                 steps_per_epoch=1, decay_rate=0.5, decay_start_epoch=1):
        self.peak = float(peak)
        self.total_steps = max(int(total_steps), 1)
        self.warmup_steps = int(warmup_steps)
        self.decay = decay
        self.floor = float(floor)
        self.steps_per_epoch = max(int(steps_per_epoch), 1)
        self.decay_rate = float(decay_rate)
        self.decay_start_epoch = int(decay_start_epoch)

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        warmup = keras.ops.minimum(1.0, (step + 1.0) / max(self.warmup_steps, 1))
        span = max(self.total_steps - self.warmup_steps, 1)
        progress = keras.ops.clip((step - self.warmup_steps) / span, 0.0, 1.0)
        if self.decay == "cosine":
            factor = self.floor + (1.0 - self.floor) * 0.5 * (1.0 + keras.ops.cos(math.pi * progress))
        elif self.decay == "linear":
            factor = 1.0 - (1.0 - self.floor) * progress
        elif self.decay == "noam":
            factor = keras.ops.sqrt(max(self.warmup_steps, 1) / keras.ops.maximum(step + 1.0, 1.0))
        elif self.decay == "step":
            epoch = keras.ops.floor(step / self.steps_per_epoch) + 1.0
            factor = keras.ops.power(self.decay_rate,
                                     keras.ops.maximum(epoch - self.decay_start_epoch + 1.0, 0.0))
        else:
            factor = 1.0
        return self.peak * keras.ops.minimum(warmup, factor) if self.warmup_steps else self.peak * factor

    def get_config(self):
        return {"peak": self.peak, "total_steps": self.total_steps,
                "warmup_steps": self.warmup_steps, "decay": self.decay, "floor": self.floor,
                "steps_per_epoch": self.steps_per_epoch, "decay_rate": self.decay_rate,
                "decay_start_epoch": self.decay_start_epoch}


def scaled_learning_rate(train_cfg, replicas):
    """`train.learning_rate` scaled for a global batch `replicas` times the per-replica one:
    linear (Goyal et al. 2017, for SGD), sqrt (often better for Adam), or none."""
    factor = {"none": 1.0, "linear": float(replicas), "sqrt": math.sqrt(replicas)}
    return train_cfg.learning_rate * factor[train_cfg.scale_learning_rate]


def group_rates(groups, epoch, decay=1.0, unfreeze_every=0):
    """Learning-rate factors of layer groups (bottom up; the last is the head) in `epoch`
    (from 0): `decay` ** depth below the head (layer-wise decay), and 0 for groups that gradual
    unfreezing has not reached yet (the head trains from the start, and one more group joins,
    top down, every `unfreeze_every` epochs)."""
    rates = []
    for group in range(groups):
        depth = groups - 1 - group
        frozen = unfreeze_every and epoch < depth * unfreeze_every
        rates.append(0.0 if frozen else decay ** depth)
    return rates


def with_group_rates(optimizer_class, variable_groups):
    """A subclass of `optimizer_class` that scales each variable's learning rate by its group's
    factor, held in the vector `group_rates` (assigned every epoch by `GroupRatesCallback`; read
    inside the compiled step, so changing it retraces nothing).

    Keras' optimizers take one learning rate; this multiplies the rate that `update_step`
    receives for each variable. Weight decay (AdamW) keeps the plain rate.
    """
    import tensorflow as tf

    group_of = {id(v): g for g, variables in enumerate(variable_groups) for v in variables}
    top = len(variable_groups) - 1

    class GroupRates(optimizer_class):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.group_rates = tf.Variable(tf.ones([top + 1]), trainable=False, name="group_rates")

        def build(self, var_list):
            super().build(var_list)
            self._group_index = [group_of.get(id(v), top) for v in var_list]

        def update_step(self, gradient, variable, learning_rate):
            group = self._group_index[self._get_variable_index(variable)]
            factor = keras.ops.cast(self.group_rates[group], keras.ops.dtype(learning_rate))
            return super().update_step(gradient, variable, learning_rate * factor)

    GroupRates.__name__ = optimizer_class.__name__
    return GroupRates


class GroupRatesCallback(keras.callbacks.Callback):
    """Sets the optimizer's `group_rates` at the start of every epoch (`group_rates`)."""

    def __init__(self, optimizer, groups, decay, unfreeze_every):
        super().__init__()
        self.optimizer, self.groups = optimizer, groups
        self.decay, self.unfreeze_every = decay, unfreeze_every

    def on_epoch_begin(self, epoch, logs=None):
        self.optimizer.group_rates.assign(group_rates(self.groups, epoch, self.decay,
                                                      self.unfreeze_every))


def make_optimizer(train_cfg, total_steps, steps_per_epoch=1, replicas=1, variable_groups=None):
    """The optimizer `train.optimizer` names, with the warmup/decay schedule; with
    `variable_groups` (bottom up), per-group learning-rate factors (`with_group_rates`)."""
    rate = scaled_learning_rate(train_cfg, replicas)
    if train_cfg.warmup_steps or train_cfg.decay != "none":
        rate = WarmupDecay(rate, total_steps, train_cfg.warmup_steps, train_cfg.decay,
                           floor=train_cfg.min_learning_rate / train_cfg.learning_rate,
                           steps_per_epoch=steps_per_epoch, decay_rate=train_cfg.decay_rate,
                           decay_start_epoch=train_cfg.decay_start_epoch)
    common = {"learning_rate": rate, "global_clipnorm": train_cfg.clipnorm}
    if train_cfg.gradient_accumulation_steps > 1:
        common["gradient_accumulation_steps"] = train_cfg.gradient_accumulation_steps
    if train_cfg.ema_decay:
        # Keras keeps the averages as optimizer variables, so backups and resumes carry them
        common.update(use_ema=True, ema_momentum=train_cfg.ema_decay)
    classes = {"adamw": keras.optimizers.AdamW, "sgd": keras.optimizers.SGD,
               "adam": keras.optimizers.Adam}
    if variable_groups:
        classes = {name: with_group_rates(cls, variable_groups) for name, cls in classes.items()}
    if train_cfg.optimizer == "adamw":
        optimizer = classes["adamw"](weight_decay=train_cfg.weight_decay,
                                     beta_2=train_cfg.beta_2, **common)
        # decay only matrices and embeddings, as GPT-2 / nanoGPT / BERT do: shrinking biases
        # and LayerNorm scales toward zero only hurts
        optimizer.exclude_from_weight_decay(var_names=["bias", "gamma", "beta"])
        return optimizer
    if train_cfg.optimizer == "sgd":
        return classes["sgd"](momentum=train_cfg.momentum, **common)
    return classes["adam"](beta_2=train_cfg.beta_2, **common)
