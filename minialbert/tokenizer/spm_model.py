"""sentencepiece's model file (ModelProto), read and written without protobuf.

spiece.model is a protobuf message; the few fields ALBERT needs are decoded here by hand so that
neither `protobuf` nor sentencepiece's generated `_pb2` module is a run-time dependency:

    ModelProto  1: pieces (repeated SentencePiece: 1 piece, 2 score (float), 3 type)
                2: trainer_spec (3: model_type, 1 = UNIGRAM)
                3: normalizer_spec (2: precompiled_charsmap, 3: add_dummy_prefix,
                   4: remove_extra_whitespaces, 5: escape_whitespaces)

`serialize_model` writes a model for sentencepiece's C++ Viterbi with all normalization off.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, Iterable

# sentencepiece piece types
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def _write_varint(value: int) -> bytes:
    if value < 0:
        value += 1 << 64
    out = bytearray()
    while True:
        b = value & 0x7F
        value >>= 7
        if value:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _fields(buf: bytes) -> list[tuple[int, int, Any]]:
    """Decode one protobuf message into (field number, wire type, value) triples."""
    out = []
    pos = 0
    n = len(buf)
    while pos < n:
        key, pos = _read_varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _read_varint(buf, pos)
        elif wire == 1:
            value, pos = buf[pos : pos + 8], pos + 8
        elif wire == 2:
            length, pos = _read_varint(buf, pos)
            value, pos = buf[pos : pos + length], pos + length
        elif wire == 5:
            value, pos = buf[pos : pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        out.append((field, wire, value))
    return out


def _encode_fields(fields: Iterable[tuple[int, int, Any]]) -> bytes:
    out = bytearray()
    for field, wire, value in fields:
        out += _write_varint((field << 3) | wire)
        if wire == 0:
            out += _write_varint(value)
        elif wire == 2:
            out += _write_varint(len(value)) + value
        else:
            out += value
    return bytes(out)


@dataclass
class SpmModel:
    pieces: list[tuple[str, float, int]]  # (piece, score, type)
    trainer: list[tuple[int, int, Any]]
    normalizer: dict[int, Any]
    other: list[tuple[int, int, Any]]

    @classmethod
    def parse(cls, data: bytes) -> "SpmModel":
        pieces, trainer, normalizer, other = [], [], {}, []
        for field, wire, value in _fields(data):
            if field == 1 and wire == 2:
                piece, score, ptype = "", 0.0, NORMAL
                for f, _w, v in _fields(value):
                    if f == 1:
                        piece = v.decode("utf-8")
                    elif f == 2:
                        score = struct.unpack("<f", v)[0]
                    elif f == 3:
                        ptype = v
                pieces.append((piece, score, ptype))
            elif field == 2 and wire == 2:
                trainer = _fields(value)
            elif field == 3 and wire == 2:
                normalizer = {f: v for f, w, v in _fields(value)}
            else:
                other.append((field, wire, value))
        if not pieces:
            raise ValueError("no pieces")
        return cls(pieces, trainer, normalizer, other)

    def trainer_value(self, field: int, default: Any) -> Any:
        for f, _, v in self.trainer:
            if f == field:
                return v
        return default

    @property
    def model_type(self) -> int:
        return self.trainer_value(3, 1)  # 1 = UNIGRAM

    @property
    def charsmap(self) -> bytes:
        return self.normalizer.get(2, b"")


def serialize_model(pieces: list[tuple[str, float, int]]) -> bytes:
    """A unigram model of `pieces` (piece, score, type) with all normalization off: identity
    rule, no dummy prefix, no whitespace removal or escaping. The input we give it is already
    normalized and pre-tokenized. No special ids are set, so none are re-derived."""
    out = []
    for piece, score, ptype in pieces:
        body = _encode_fields(
            [(1, 2, piece.encode("utf-8")), (2, 5, struct.pack("<f", score)), (3, 0, ptype)]
        )
        out.append((1, 2, body))
    out.append((2, 2, _encode_fields([(3, 0, 1)])))  # trainer_spec: model_type = UNIGRAM
    normalizer = _encode_fields(
        [(1, 2, b"identity"), (3, 0, 0), (4, 0, 0), (5, 0, 0)]
    )
    out.append((3, 2, normalizer))
    return _encode_fields(out)
