"""Reads an offline W&B run file (`run-<id>.wandb`): a LevelDB-style log of protobuf records."""

BLOCK = 32768
HEADER = 7  # ":W&B", a 2-byte magic, a version byte
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def records(path):
    """Every `wandb_internal_pb2.Record` in the file, in order."""
    from wandb.proto import wandb_internal_pb2

    data = open(path, "rb").read()
    assert data[:4] == b":W&B", path
    found, pending, position = [], b"", HEADER
    while position + 7 <= len(data):
        if BLOCK - position % BLOCK < 7:  # a block's tail too short for a record header: padding
            position += BLOCK - position % BLOCK
            continue
        length = int.from_bytes(data[position + 4:position + 6], "little")
        kind = data[position + 6]
        pending += data[position + 7:position + 7 + length]
        position += 7 + length
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            found.append(record)
            pending = b""
        elif kind not in (FIRST, MIDDLE):
            pending = b""
    return found


def history(path):
    """The logged rows: `[{key: value}]` from the run's history records."""
    import json

    return [{item.key or "/".join(item.nested_key): json.loads(item.value_json)
             for item in record.history.item}
            for record in records(path) if record.WhichOneof("record_type") == "history"]
