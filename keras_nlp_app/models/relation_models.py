"""Relation classifiers over marked text (`__e1s__ head __e1e__ … __e2s__ tail __e2e__`): the
states at the two entity-start markers, which know the whole sentence, decide the relation
(Baldini Soares et al. 2019's entity-marker start pooling). `MarkerStates` also pools a
pretrained backbone's states at the markers (`backbone_classifier`, pooling `markers`).

With `entity_ends`, the states at the two end markers join them. A BiLSTM needs them to see
each entity whole: at an entity's start marker its forward half has read only the words before
the entity, at the end marker it has read the entity too (a span as its two endpoints' states,
as in Lee et al. 2017)."""

import keras

from keras_nlp_app.models.bilstm_classifier import bilstm_encoder
from keras_nlp_app.models.lstm_classifier import classifier_head
from keras_nlp_app.models.pooling import AttentionPooling, MarkerStates
from keras_nlp_app.models.transformer_classifier import transformer_encoder


def _check(multi_label):
    if multi_label:
        raise ValueError("a relation has one label per entity pair, not multi_label")


def _entity_states(x, token_ids, head_marker_id, tail_marker_id, head_end_marker_id,
                   tail_end_marker_id, entity_ends):
    states = MarkerStates(head_marker_id, tail_marker_id, name="marker_states")(x, token_ids)
    if not entity_ends:
        return states
    if head_end_marker_id is None or tail_end_marker_id is None:
        raise ValueError("entity_ends needs the ids of the end markers __e1e__ and __e2e__")
    ends = MarkerStates(head_end_marker_id, tail_end_marker_id, name="end_marker_states")(
        x, token_ids)
    return keras.layers.Concatenate(name="entity_states")([states, ends])


def build_relation_bilstm(*, vocab_size, head_marker_id, tail_marker_id, head_end_marker_id=None,
                          tail_end_marker_id=None, num_classes=19, multi_label=False,
                          sequence_length=None, embedding_dim=100, lstm_units=128, num_layers=1,
                          attention_dim=64, dropout=0.5, embedding_dropout=0.3, cell="lstm",
                          entity_ends=False, word_class_dim=0):
    """Entity-marker BiLSTM with attention (Zhou et al. 2016's Att-BiLSTM, with markers).

    Embedding → stacked BiLSTM → [attention pooling over the sentence; the states at the two
    entity-start markers (and end markers)] → dropout → softmax over the directed labels.

    Args:
        vocab_size: token ids are in [0, vocab_size); 0 pads.
        head_marker_id, tail_marker_id: ids of `__e1s__` and `__e2s__` (set by the task).
        head_end_marker_id, tail_end_marker_id: ids of `__e1e__` and `__e2e__` (set by the task).
        num_classes: the directed labels (SemEval-2010 Task 8: 19).
        multi_label: not supported.
        sequence_length: unused.
        embedding_dim, lstm_units, num_layers, attention_dim: widths and depth.
        dropout: on the pooled features; embedding_dropout: on the embeddings.
        cell: lstm or gru.
        entity_ends: also pool the states at the end markers.
        word_class_dim: width of a learned vector of each word's class (WordNet supersense or a
            lexicon's label, from `model.word_classes`) beside its embedding; 0: none.
    """
    del sequence_length
    _check(multi_label)
    token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    x = bilstm_encoder(token_ids, vocab_size, embedding_dim, embedding_dropout, num_layers, cell,
                       lstm_units, word_class_dim)
    pooled = AttentionPooling(attention_dim, name="attention_pooling")(x, token_ids)
    entities = _entity_states(x, token_ids, head_marker_id, tail_marker_id, head_end_marker_id,
                              tail_end_marker_id, entity_ends)
    features = keras.layers.Dropout(dropout)(keras.layers.Concatenate()([pooled, entities]))
    return keras.Model(token_ids, classifier_head(num_classes)(features), name="relation_bilstm")


def build_relation_transformer(*, vocab_size, head_marker_id, tail_marker_id,
                               head_end_marker_id=None, tail_end_marker_id=None, num_classes=19,
                               multi_label=False, sequence_length=128, hidden_dim=256,
                               num_layers=3, num_heads=4, intermediate_dim=512, dropout=0.1,
                               entity_ends=False):
    """Transformer encoder (keras-hub blocks) that pools the two entity-start markers.

    Args:
        vocab_size: token ids are in [0, vocab_size); 0 pads (masked in attention).
        head_marker_id, tail_marker_id: ids of `__e1s__` and `__e2s__` (set by the task).
        head_end_marker_id, tail_end_marker_id: ids of `__e1e__` and `__e2e__` (set by the task).
        num_classes: the directed labels.
        multi_label: not supported.
        sequence_length: longest input; sizes the learned position table.
        hidden_dim, num_layers, num_heads, intermediate_dim: encoder shape.
        dropout: inside every block and on the pooled features.
        entity_ends: also pool the states at the end markers.
    """
    _check(multi_label)
    token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    x = transformer_encoder(token_ids, vocab_size, sequence_length, hidden_dim, num_layers,
                            num_heads, intermediate_dim, dropout)
    entities = _entity_states(x, token_ids, head_marker_id, tail_marker_id, head_end_marker_id,
                              tail_end_marker_id, entity_ends)
    features = keras.layers.Dropout(dropout)(entities)
    return keras.Model(token_ids, classifier_head(num_classes)(features),
                       name="relation_transformer")
