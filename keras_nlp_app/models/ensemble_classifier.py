"""An ensemble of classifier families in one model: the members' probabilities are averaged."""

import keras

from keras_nlp_app.errors import ConfigError


def build_ensemble_classifier(*, vocab_size, num_classes=2, multi_label=False, sequence_length=None,
                              members=({"name": "lstm_classifier"}, {"name": "cnn_classifier"},
                                       {"name": "bilstm_classifier"}), **task_inputs):
    """Averages the class probabilities of several classifiers that read the same token ids.

    Members are trained together on the loss of the average; each keeps its own embedding and
    parameters, so their errors stay partly independent, which is what makes averaging pay.

    Args:
        vocab_size, num_classes, multi_label, sequence_length: passed to every member.
        members: list of {"name": factory, "params": {...}} from `keras_nlp_app.models.MODELS`
            (not another ensemble).
        **task_inputs: what the task gives every member besides the token ids (the relation
            task's entity-marker ids), passed on unchanged.
    """
    from keras_nlp_app.models import MODELS, build_model

    if not members:
        raise ConfigError("an ensemble needs at least one member")
    token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    outputs = []
    for i, member in enumerate(members):
        name = member.get("name")
        if name not in MODELS or name == "ensemble_classifier":
            valid = ", ".join(m for m in MODELS if m != "ensemble_classifier")
            raise ConfigError(f"ensemble member {i} names {name!r}; valid members: {valid}")
        unknown = set(member) - {"name", "params"}
        if unknown:
            raise ConfigError(f"ensemble member {i} has unknown keys {sorted(unknown)}; use name, params")
        model = build_model(name, vocab_size=vocab_size, num_classes=num_classes,
                            multi_label=multi_label, sequence_length=sequence_length,
                            **task_inputs, **member.get("params", {}))
        member_model = keras.Model(model.inputs[0], model.outputs[0], name=f"member_{i}_{name}")
        outputs.append(member_model(token_ids))
    if len(outputs) > 1:
        outputs = [keras.layers.Average(name="probabilities", dtype="float32")(outputs)]
    return keras.Model(token_ids, outputs[0], name="ensemble_classifier")
