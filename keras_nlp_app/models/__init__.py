"""Model factories: keyword arguments in, `keras.Model` out. `MODELS` maps names to factories."""

import inspect

from keras_nlp_app.errors import ConfigError
from keras_nlp_app.models.backbone_classifier import build_backbone_classifier
from keras_nlp_app.models.backbone_lm import build_backbone_lm
from keras_nlp_app.models.backbone_reader import build_backbone_reader
from keras_nlp_app.models.backbone_tagger import build_backbone_tagger
from keras_nlp_app.models.bert_masked_lm import build_bert_masked_lm
from keras_nlp_app.models.bidaf_reader import build_bidaf_reader
from keras_nlp_app.models.bilstm_classifier import build_bilstm_classifier
from keras_nlp_app.models.bilstm_crf_tagger import build_bilstm_crf_tagger
from keras_nlp_app.models.cnn_classifier import build_cnn_classifier
from keras_nlp_app.models.ensemble_classifier import build_ensemble_classifier
from keras_nlp_app.models.fasttext_classifier import build_fasttext_classifier
from keras_nlp_app.models.lstm_classifier import build_lstm_classifier
from keras_nlp_app.models.lstm_lm import build_lstm_lm
from keras_nlp_app.models.lstm_seq2seq import build_lstm_seq2seq
from keras_nlp_app.models.nb_classifier import build_nb_classifier, build_nbsvm_classifier
from keras_nlp_app.models.ngram_classifier import build_ngram_classifier
from keras_nlp_app.models.relation_models import build_relation_bilstm, build_relation_transformer
from keras_nlp_app.models.transformer_classifier import build_transformer_classifier
from keras_nlp_app.models.transformer_lm import build_transformer_lm
from keras_nlp_app.models.transformer_reader import build_transformer_reader
from keras_nlp_app.models.transformer_seq2seq import build_transformer_seq2seq
from keras_nlp_app.models.transformer_tagger import build_transformer_tagger

MODELS = {
    "lstm_classifier": build_lstm_classifier,
    "bilstm_classifier": build_bilstm_classifier,
    "cnn_classifier": build_cnn_classifier,
    "fasttext_classifier": build_fasttext_classifier,
    "ensemble_classifier": build_ensemble_classifier,
    "nb_classifier": build_nb_classifier,
    "nbsvm_classifier": build_nbsvm_classifier,
    "ngram_classifier": build_ngram_classifier,
    "transformer_classifier": build_transformer_classifier,
    "lstm_lm": build_lstm_lm,
    "transformer_lm": build_transformer_lm,
    "backbone_lm": build_backbone_lm,
    "transformer_seq2seq": build_transformer_seq2seq,
    "lstm_seq2seq": build_lstm_seq2seq,
    "bilstm_crf_tagger": build_bilstm_crf_tagger,
    "transformer_tagger": build_transformer_tagger,
    "backbone_classifier": build_backbone_classifier,
    "backbone_tagger": build_backbone_tagger,
    "bert_masked_lm": build_bert_masked_lm,
    "bidaf_reader": build_bidaf_reader,
    "transformer_reader": build_transformer_reader,
    "backbone_reader": build_backbone_reader,
    "relation_bilstm": build_relation_bilstm,
    "relation_transformer": build_relation_transformer,
}



def build_model(name, **kwargs):
    """Calls the factory `name`, rejecting unknown names, unknown keyword arguments (a factory
    that passes extra ones on to others, the ensemble, leaves them to those) and anything but
    true or false for a switch (a parameter whose default is a bool: "no" would read as true)."""
    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}; valid models: {', '.join(MODELS)}",
                          key="model.name")
    factory = MODELS[name]
    parameters = inspect.signature(factory).parameters.values()
    valid = [p.name for p in parameters if p.kind is not p.VAR_KEYWORD]
    passes_on = any(p.kind is p.VAR_KEYWORD for p in parameters)
    unknown = [] if passes_on else [k for k in kwargs if k not in valid]
    if unknown:
        raise ConfigError(f"model {name} has no parameter {unknown[0]!r}; valid: "
                          f"{', '.join(valid)}", key=f"model.params.{unknown[0]}")
    switches = {p.name for p in parameters if isinstance(p.default, bool)}
    for key in switches & set(kwargs):
        if not isinstance(kwargs[key], bool):
            raise ConfigError(f"model {name}: {key} must be true or false, not {kwargs[key]!r}",
                              key=f"model.params.{key}")
    try:
        return factory(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"model {name}: {exc}", key="model.params") from None
