"""A minialbert ONNX export run by ONNX Runtime, called like an AlbertModel (inference only).

    from minialbert import Embedder
    emb = Embedder.from_pretrained("albert-onnx/", backend="onnxruntime")   # a folder with an export
    emb = Embedder.from_pretrained("albert-base-v2", backend="onnxruntime")  # exported in memory

    from minialbert.onnx_backend import OnnxAlbert
    model = OnnxAlbert("albert-onnx/model.onnx")
    out = model(input_ids, attention_mask=mask)      # AlbertOutput(last_hidden_state, pooler_output)

Needs the `[onnx]` extra (onnxruntime). The export (minialbert/export.py) carries the model's
config in its metadata, so the file alone describes the model.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path

import numpy as np
import torch

from .config import AlbertConfig
from .errors import CheckpointError, MinialbertError
from .model import AlbertOutput


def _ort():
    try:
        import onnxruntime
    except ImportError:
        raise MinialbertError("backend='onnxruntime' needs ONNX Runtime: pip install 'minialbert[onnx]'") from None
    return onnxruntime


def find_export(folder: str | os.PathLike) -> Path | None:
    """The .onnx file of an export folder (model.onnx, or the only .onnx there), or None."""
    folder = Path(folder)
    if folder.is_file():
        return folder if folder.suffix == ".onnx" else None
    if not folder.is_dir():
        return None
    if (folder / "model.onnx").is_file():
        return folder / "model.onnx"
    found = sorted(folder.glob("*.onnx"))
    if len(found) > 1:
        raise CheckpointError(f"{folder} holds several ONNX files ({', '.join(f.name for f in found)}); "
                              "give the path of the one to use")
    return found[0] if found else None


class OnnxAlbert:
    """An ONNX Runtime session with AlbertModel's call signature (last layer and pooler only).

    source: a path to a minialbert .onnx export, or its bytes / ModelProto. threads: intra-op
    threads (default: torch.get_num_threads(), the same budget as the PyTorch backend).
    """

    training = False
    device = torch.device("cpu")
    dtype = torch.float32

    def __init__(self, source, *, threads: int | None = None):
        ort = _ort()
        if hasattr(source, "SerializeToString"):
            source = source.SerializeToString()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # warnings about shape merging are not the user's concern
        name = "<in memory>" if isinstance(source, bytes) else str(source)
        # What the graph computes, for streaming manifests (see `fingerprint`): hashed now for
        # bytes, which are not kept; read again only when asked for a file.
        self._digest = hashlib.sha256(source).hexdigest() if isinstance(source, bytes) else None
        try:
            self.session = ort.InferenceSession(source if isinstance(source, bytes) else str(source), options,
                                                providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own exception types for unreadable files
            raise CheckpointError(f"cannot load ONNX model {name}: {str(e).splitlines()[0]}") from None
        meta = self.session.get_modelmeta().custom_metadata_map
        if "minialbert_config" not in meta:
            raise CheckpointError(f"{name} is not a minialbert ONNX export (no minialbert_config in its metadata); "
                                  "write one with `minialbert export onnx MODEL OUT.onnx`")
        self.config = AlbertConfig.from_dict(json.loads(meta["minialbert_config"]), source=name)
        self.int8 = meta.get("minialbert_int8", "none")
        self.source = name
        if self.int8.startswith("U8S8") and "reduce_range" not in self.int8:
            from .plan import int8_without_saturation

            if not int8_without_saturation():
                warnings.warn(f"{name} has int8 weights ('s8') whose products this CPU (no VNNI or AMX) sums with "
                              "int16 saturation: vectors drift further from float32 (mean-pooled cosine ~0.9989 "
                              "instead of ~0.9998 measured); on this CPU export with --int8-weights u8 (or s8 "
                              "--reduce-range)", UserWarning, stacklevel=2)
        self._outputs = [o.name for o in self.session.get_outputs()]

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the ONNX file (or bytes) this session runs (minialbert.stream.model_identity)."""
        if self._digest is None:
            try:
                self._digest = hashlib.sha256(Path(self.source).read_bytes()).hexdigest()
            except OSError as e:
                raise CheckpointError(f"cannot read ONNX model {self.source}: {e.strerror or e}") from None
        return self._digest

    def __repr__(self) -> str:
        return f"OnnxAlbert({self.source!r}, int8={self.int8!r})"

    def eval(self) -> "OnnxAlbert":
        return self

    def to(self, device=None, dtype=None) -> "OnnxAlbert":
        if (device is not None and torch.device(device).type != "cpu") or (dtype is not None and dtype != torch.float32):
            raise MinialbertError("the onnxruntime backend runs float32 on the CPU; use backend='torch' for "
                                  "other devices or dtypes")
        return self

    def save_pretrained(self, directory) -> None:
        raise MinialbertError("an ONNX Runtime model cannot be saved as a PyTorch checkpoint; save the model it "
                              "was exported from, or copy the export folder")

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                 token_type_ids: torch.Tensor | None = None, position_ids: torch.Tensor | None = None,
                 output_hidden_states: bool = False, output_attentions: bool = False) -> AlbertOutput:
        if output_hidden_states or output_attentions:
            raise MinialbertError("the onnxruntime backend returns the last layer only; use backend='torch' "
                                  "for other layers or attentions")
        if position_ids is not None:
            raise MinialbertError("the ONNX export uses positions 0..seq-1; use backend='torch' for position_ids")

        def int64(t, fill):
            if t is None:
                return np.full(tuple(input_ids.shape), fill, dtype=np.int64)
            return t.detach().to("cpu", torch.int64).numpy()

        feed = {"input_ids": int64(input_ids, 0), "attention_mask": int64(attention_mask, 1),
                "token_type_ids": int64(token_type_ids, 0)}
        results = dict(zip(self._outputs, self.session.run(None, feed)))
        pooled = results.get("pooler_output")
        return AlbertOutput(torch.from_numpy(results["last_hidden_state"]),
                            None if pooled is None else torch.from_numpy(pooled))

