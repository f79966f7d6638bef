"""The public tokenizer: loading, saving and transformers' calling conventions.

The text-to-ids work is done by the modules beside this one (see the package docstring):
normalize.py, segment.py, and original.py for `compat="original"`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence

import sentencepiece as spm

from ..errors import CheckpointError, ConfigError, MinialbertError
from ..jsonio import read_json
from . import encoding
from .encoding import BatchEncoding
from .loading import config_for_saving, kwargs_from_config, read_vocabulary
from .normalize import Normalizer
from .original import original_ids
from .segment import SPIECE_UNDERLINE, AddedToken, Segmenter
from .symbols import CLS_TOKEN, COMPAT_MODES, MASK_TOKEN, PAD_TOKEN, SEP_TOKEN, UNK_TOKEN


class AlbertTokenizer:
    """ALBERT's SentencePiece tokenizer, equal to `transformers.AlbertTokenizer` (v5) id for id.

    Build it with `AlbertTokenizer.from_pretrained(dir_or_repo_or_file)`, or directly from a
    `spiece.model` path and/or a `tokenizer_file` (tokenizer.json). Options:

    - do_lower_case, keep_accents: from tokenizer_config.json as in transformers; when that does
      not say, from what tokenizer.json's normalizer does; else ALBERT's True and False.
    - model_max_length (512): the default max_length for truncation and "max_length" padding.
    - compat ("transformers"): the algorithm of transformers >= 5.25 (the pinned reference).
      "transformers<5.25" is that of transformers 5.x before 5.25, which differs only for a
      spiece.model without tokenizer.json: ALBERT's user-defined pieces ( ) " - . – £ € are
      added tokens there, and the word after one starts again with "▁" (for models fine-tuned
      with those ids). "original" switches to the google-research ALBERT algorithm
      (whitespace collapsed with str.split, sentencepiece's own normalization of the whole
      string, combining marks removed by canonical combining class, digit+comma pieces
      re-split, special tokens in the text not recognised); it needs spiece.model. See
      docs/guides/tokenizer.md.
    - num_threads: threads for sentencepiece's batched encoding (default: os.cpu_count()).
    """

    model_input_names = ["input_ids", "token_type_ids", "attention_mask"]

    def __init__(
        self,
        vocab_file: str | os.PathLike | None = None,
        *,
        tokenizer_file: str | os.PathLike | None = None,
        do_lower_case: bool | None = None,
        keep_accents: bool | None = None,
        model_max_length: int = 512,
        compat: str = "transformers",
        added_tokens: Sequence[dict] | None = None,
        unk_token: str = UNK_TOKEN,
        pad_token: str = PAD_TOKEN,
        cls_token: str = CLS_TOKEN,
        sep_token: str = SEP_TOKEN,
        mask_token: str = MASK_TOKEN,
        num_threads: int | None = None,
    ):
        if compat not in COMPAT_MODES:
            raise ConfigError(f"compat must be one of {', '.join(map(repr, COMPAT_MODES))}, not {compat!r}")
        self.vocab_file = str(vocab_file) if vocab_file else None
        self.tokenizer_file = str(tokenizer_file) if tokenizer_file else None
        vocab = read_vocabulary(self.vocab_file, self.tokenizer_file, user_defined_added=compat == "transformers<5.25")
        source = self.tokenizer_file or self.vocab_file
        self.do_lower_case = bool(_first(do_lower_case, vocab.lowercase, True))
        self.keep_accents = bool(_first(keep_accents, None if vocab.strip_accents is None else not vocab.strip_accents, False))
        self.model_max_length = int(model_max_length)
        self.compat = compat
        self.num_threads = num_threads if num_threads is not None else (os.cpu_count() or 1)
        self.padding_side = "right"

        # The original sentencepiece processor, for compat="original" only.
        self._sp_orig = None
        if vocab.spm_bytes is not None:
            self._sp_orig = spm.SentencePieceProcessor()
            self._sp_orig.LoadFromSerializedProto(vocab.spm_bytes)
        elif compat == "original":
            raise CheckpointError(
                f"compat='original' needs ALBERT's spiece.model, and {source} comes without one: the "
                "original algorithm runs sentencepiece's own normalizer with the model's piece types "
                "and scores, which a tokenizer.json does not keep"
            )

        self._pieces = [p for p, _ in vocab.pieces]
        self._vocab = {p: i for i, p in enumerate(self._pieces)}
        self._n_vocab = len(self._pieces)

        # Special tokens: names from tokenizer_config (or ALBERT's defaults), ids from the vocab.
        self.unk_token = unk_token
        self.pad_token, self.cls_token, self.sep_token, self.mask_token = pad_token, cls_token, sep_token, mask_token
        self.unk_token_id = self._vocab.get(unk_token, vocab.unk_id)
        if self.unk_token_id is None:
            raise CheckpointError(f"{source} has no unknown piece")
        missing = [t for t in (pad_token, cls_token, sep_token, mask_token) if t not in self._vocab]
        if missing:
            raise CheckpointError(f"{source} lacks ALBERT's special pieces {missing}: is this ALBERT's tokenizer?")
        self.pad_token_id = self._vocab[pad_token]
        self.cls_token_id = self._vocab[cls_token]
        self.sep_token_id = self._vocab[sep_token]
        self.mask_token_id = self._vocab[mask_token]
        if vocab.template_ids not in (None, (self.cls_token_id, self.sep_token_id)):
            raise CheckpointError(
                f"{source}: its template adds ids {vocab.template_ids} around the text, not those of "
                f"{cls_token} and {sep_token} ({self.cls_token_id}, {self.sep_token_id})"
            )

        # Added tokens, as transformers registers them.
        added: dict[str, AddedToken] = {}
        for entry in added_tokens if added_tokens is not None else vocab.added_tokens:
            content = str(entry["content"])
            tid = int(entry["id"]) if entry.get("id") is not None else self._vocab.get(content)
            if tid is None:
                continue
            if entry.get("single_word"):
                raise CheckpointError(
                    f"{source}: added token {content!r} has single_word=true, which minialbert does not support"
                )
            special = bool(entry.get("special", False))
            added[content] = AddedToken(
                content, tid, special, bool(entry.get("lstrip", False)), bool(entry.get("rstrip", False)),
                normalized=bool(entry.get("normalized", not special)),  # tokenizers' default
            )
        for tok in (pad_token, unk_token, cls_token, sep_token, mask_token):
            if tok in added:
                added[tok].special = True
            else:
                added[tok] = AddedToken(tok, self._vocab.get(tok, self.unk_token_id), True)
        self._added = added
        self.all_special_ids = sorted({t.id for t in added.values() if t.special})
        self.all_special_tokens = [self._pieces[i] for i in self.all_special_ids]

        self._normalizer = Normalizer(
            do_lower_case=self.do_lower_case, keep_accents=self.keep_accents, charsmap=vocab.charsmap
        )
        self._segmenter = Segmenter(vocab.pieces, added, unk_token_id=self.unk_token_id, normalizer=self._normalizer)

    # ---------------------------------------------------------------- loading and saving

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike,
        *,
        revision: str | None = None,
        cache_dir: str | os.PathLike | None = None,
        local_files_only: bool = False,
        **overrides: Any,
    ) -> "AlbertTokenizer":
        """Load from a checkpoint folder, a Hub repo id, or a path to a `.model` or tokenizer.json file.

        Reads spiece.model and/or tokenizer.json (pieces, scores, character map, normalizer
        settings, added tokens; transformers v5 saves only tokenizer.json), plus
        tokenizer_config.json (do_lower_case, keep_accents, model_max_length, special token
        names, added tokens) when present. Keyword overrides win.
        """
        from ..hub import ModelSource

        path = os.path.expanduser(os.fspath(name_or_path))
        config: dict[str, Any] = {}
        vocab_file = tokenizer_file = None
        if os.path.isfile(path):
            if path.endswith(".json"):
                tokenizer_file = path
            else:
                vocab_file = path
            cfg = Path(path).parent / "tokenizer_config.json"
            if cfg.is_file():
                config = read_json(cfg)
        else:
            source = ModelSource(name_or_path, revision=revision, cache_dir=cache_dir, local_files_only=local_files_only)
            vocab_file = source.file("spiece.model", required=False)
            tokenizer_file = source.file("tokenizer.json", required=False)
            if vocab_file is None and tokenizer_file is None:
                try:
                    source.file("spiece.model")  # raises the message that says why
                except CheckpointError as e:
                    raise CheckpointError(
                        f"{e}. minialbert's AlbertTokenizer needs ALBERT's SentencePiece model "
                        "(spiece.model) or its tokenizer.json"
                    ) from None
            cfg = source.file("tokenizer_config.json", required=False)
            if cfg is not None:
                config = read_json(cfg)

        kwargs = kwargs_from_config(config, tokenizer_file)
        kwargs.update(overrides)
        return cls(vocab_file, tokenizer_file=tokenizer_file, **kwargs)

    def save_pretrained(self, directory: str | os.PathLike) -> None:
        """Write the files it was loaded from (spiece.model and/or tokenizer.json, unchanged)
        and tokenizer_config.json.

        `from_pretrained(directory)`, transformers' AlbertTokenizer and minialbert's Embedder read
        the folder back. tokenizer_config.json records the settings and `minialbert_compat`, so a
        folder tokenizes the same way it did when it was written.
        """
        from ..files import atomic_write

        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        files = {}
        if self.vocab_file:
            files["spiece.model"] = Path(self.vocab_file).read_bytes()
        if self.tokenizer_file:
            files["tokenizer.json"] = Path(self.tokenizer_file).read_bytes()
        settings = {k: getattr(self, k) for k in ("do_lower_case", "keep_accents", "model_max_length", "unk_token",
                                                  "pad_token", "cls_token", "sep_token", "mask_token")}
        config = config_for_saving(settings, self._added.values(), self.compat)
        files["tokenizer_config.json"] = (json.dumps(config, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
        for name, data in files.items():
            atomic_write(out / name, lambda tmp, data=data: Path(tmp).write_bytes(data))

    # ---------------------------------------------------------------- basic properties

    @property
    def vocab_size(self) -> int:
        return self._n_vocab

    def __len__(self) -> int:
        return self._n_vocab

    def get_vocab(self) -> dict[str, int]:
        return dict(self._vocab)

    def get_added_vocab(self) -> dict[str, int]:
        """The added tokens (matched in the text before the Unigram model runs) and their ids, as
        transformers' method of that name. Which pieces are added tokens is what transformers 5.25
        changed for ALBERT's user-defined symbols, so it is part of what a tokenization depends on."""
        return {t.content: t.id for t in self._added.values()}

    def __repr__(self) -> str:
        return (
            f"AlbertTokenizer(vocab_size={self.vocab_size}, do_lower_case={self.do_lower_case}, "
            f"keep_accents={self.keep_accents}, model_max_length={self.model_max_length}, compat={self.compat!r})"
        )

    def convert_tokens_to_ids(self, tokens: str | Sequence[str]) -> int | list[int]:
        if isinstance(tokens, str):
            return self._vocab.get(tokens, self.unk_token_id)
        return [self._vocab.get(t, self.unk_token_id) for t in tokens]

    def convert_ids_to_tokens(self, ids: int | Sequence[int], skip_special_tokens: bool = False) -> str | list[str]:
        if isinstance(ids, int) or (hasattr(ids, "ndim") and ids.ndim == 0):
            return self._id_to_piece(int(ids))
        special = set(self.all_special_ids) if skip_special_tokens else ()
        return [self._id_to_piece(int(i)) for i in ids if int(i) not in special]

    def _id_to_piece(self, i: int) -> str:
        if not 0 <= i < self._n_vocab:
            raise MinialbertError(f"token id {i} is outside the vocabulary (0..{self._n_vocab - 1})")
        return self._pieces[i]

    # ---------------------------------------------------------------- public encoding API

    def _original_ids(self, text: str) -> list[int]:
        return original_ids(self._sp_orig, text, do_lower_case=self.do_lower_case, keep_accents=self.keep_accents)

    def _check_text(self, text: Any, what: str = "text") -> str:
        if not isinstance(text, str):
            raise TypeError(
                f"{what} must be a str or a list of str, got {type(text).__name__}"
                + (f" ({text!r:.60})" if text is not None else "")
            )
        return text

    def encode_batch_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of each text, without special tokens: the fast path (batched C++)."""
        for t in texts:
            self._check_text(t)
        if self.compat == "original":
            return [self._original_ids(t) for t in texts]
        seg = self._segmenter
        return seg.segment([seg.segmenter_input(t) for t in texts], self.num_threads)

    def encode(self, text: str, text_pair: str | None = None, *, add_special_tokens: bool = True, **kwargs: Any) -> list[int]:
        """Token ids of one text (and optional pair). With add_special_tokens=False and no
        other option this is the fastest way to get ids for chunking long texts."""
        self._check_text(text)
        if not kwargs and text_pair is None:
            ids = self.encode_batch_ids([text])[0]
            return self.build_inputs_with_special_tokens(ids) if add_special_tokens else ids
        enc = self(text, text_pair, add_special_tokens=add_special_tokens, **kwargs)
        return enc["input_ids"]

    def tokenize(self, text: str, pair: str | None = None, add_special_tokens: bool = False) -> list[str]:
        """Token strings. Like transformers, an unknown stretch appears as its own (normalized)
        text, not as "<unk>"; its id is unk_token_id."""
        self._check_text(text)
        if self.compat == "original":
            toks = [self._pieces[i] for i in self._original_ids(text)]
        else:
            toks = self._segmenter.tokens(text)
        if pair is not None and not self._check_text(pair, "pair"):
            pair = None  # an empty pair is no pair, as in __call__
        if pair is not None:
            toks_b = [self._pieces[i] for i in self._original_ids(pair)] if self.compat == "original" else self._segmenter.tokens(pair)
        if add_special_tokens:
            out = [self.cls_token, *toks, self.sep_token]
            if pair is not None:
                out += [*toks_b, self.sep_token]
            return out
        return toks + (toks_b if pair is not None else [])

    def build_inputs_with_special_tokens(self, ids_a: Sequence[int], ids_b: Sequence[int] | None = None) -> list[int]:
        """[CLS] A [SEP] or [CLS] A [SEP] B [SEP]."""
        out = [self.cls_token_id, *ids_a, self.sep_token_id]
        if ids_b is not None:
            out += [*ids_b, self.sep_token_id]
        return out

    def create_token_type_ids_from_sequences(self, ids_a: Sequence[int], ids_b: Sequence[int] | None = None) -> list[int]:
        n = len(ids_a) + 2
        if ids_b is None:
            return [0] * n
        return [0] * n + [1] * (len(ids_b) + 1)

    def num_special_tokens_to_add(self, pair: bool = False) -> int:
        return 3 if pair else 2

    def __call__(
        self,
        text: str | Sequence[str],
        text_pair: str | Sequence[str] | None = None,
        *,
        add_special_tokens: bool = True,
        padding: bool | str = False,
        truncation: bool | str | None = None,
        max_length: int | None = None,
        return_tensors: str | None = None,
        return_offsets_mapping: bool = False,
        return_token_type_ids: bool = True,
        return_attention_mask: bool = True,
        pad_to_multiple_of: int | None = None,
    ) -> BatchEncoding:
        """Encode one text, a list of texts, or (lists of) pairs, like transformers does."""
        single = isinstance(text, str)
        texts, pairs = self._check_inputs(text, text_pair)
        pad_mode, trunc_mode = encoding.modes(padding, truncation)
        if return_tensors not in (None, "pt", "np"):
            raise MinialbertError(f"return_tensors must be None, 'pt' or 'np', not {return_tensors!r}")
        if max_length is not None and (not isinstance(max_length, int) or max_length < 0):
            raise MinialbertError(f"max_length must be a positive int, not {max_length!r}")
        if trunc_mode is not None and max_length is None:
            max_length = self.model_max_length
        n_special = (3 if pairs is not None else 2) if add_special_tokens else 0
        if trunc_mode is not None and max_length < n_special:  # type: ignore[operator]
            raise MinialbertError(
                f"max_length={max_length} is too small for the {n_special} special tokens "
                f"([CLS] ... [SEP]): {n_special - max_length} more needed; "  # type: ignore[operator]
                f"use max_length={n_special} or more"
            )
        if return_offsets_mapping and self.compat == "original":
            raise MinialbertError("return_offsets_mapping is not available with compat='original'")

        # 1. segmentation (batched)
        a_off = b_off = None
        if return_offsets_mapping:
            a_ids, a_off = self._ids_and_offsets(texts)
            if pairs is not None:
                b_ids, b_off = self._ids_and_offsets(pairs)
        else:
            ids = self.encode_batch_ids(texts + (pairs or []))
            a_ids = ids[: len(texts)]
            b_ids = ids[len(texts) :]
        if pairs is None:
            b_ids = None

        # 2. truncation, special tokens
        input_ids, type_ids, offsets = [], [], []
        for k in range(len(texts)):
            ia = a_ids[k]
            ib = b_ids[k] if b_ids is not None else None
            oa = a_off[k] if a_off is not None else None
            ob = b_off[k] if b_off is not None else None
            if trunc_mode is not None:
                assert max_length is not None
                la, lb = encoding.truncate_lengths(
                    len(ia), len(ib) if ib is not None else None, max_length - n_special, trunc_mode
                )
                ia = ia[:la]
                oa = oa[:la] if oa is not None else None
                if ib is not None:
                    ib = ib[:lb]
                    ob = ob[:lb] if ob is not None else None
            if add_special_tokens:
                seq = self.build_inputs_with_special_tokens(ia, ib)
                tt = self.create_token_type_ids_from_sequences(ia, ib)
                if oa is not None:
                    off = [(0, 0), *oa, (0, 0)] + ([*ob, (0, 0)] if ob is not None else [])
            else:
                seq = list(ia) + (list(ib) if ib is not None else [])
                tt = [0] * len(ia) + ([1] * len(ib) if ib is not None else [])
                if oa is not None:
                    off = list(oa) + (list(ob) if ob is not None else [])
            input_ids.append(seq)
            type_ids.append(tt)
            if oa is not None:
                offsets.append(off)

        # 3. padding
        if pad_mode is not None:
            if pad_mode == "max_length":
                target = max_length if max_length is not None else self.model_max_length
            else:
                target = max((len(s) for s in input_ids), default=0)
            if pad_to_multiple_of:
                target = -(-target // pad_to_multiple_of) * pad_to_multiple_of
            masks = encoding.pad(input_ids, type_ids, offsets, pad_id=self.pad_token_id, target=target)
        else:
            masks = [[1] * len(s) for s in input_ids]

        out: dict[str, Any] = {"input_ids": input_ids}
        if return_token_type_ids:
            out["token_type_ids"] = type_ids
        if return_attention_mask:
            out["attention_mask"] = masks
        if return_offsets_mapping:
            out["offset_mapping"] = offsets
        if return_tensors is not None:
            lengths = {len(s) for s in input_ids}
            if len(lengths) > 1:
                raise MinialbertError(
                    "texts of different lengths cannot form one tensor: pass padding=True "
                    "(or padding='max_length')"
                )
            out = {k: encoding.to_tensor(v, return_tensors) for k, v in out.items()}
        elif single:
            out = {k: v[0] for k, v in out.items()}
        return BatchEncoding(out)

    def _check_inputs(self, text: Any, text_pair: Any) -> tuple[list[str], list[str] | None]:
        """(texts, pairs or None) from __call__'s arguments, with their types checked."""
        if isinstance(text, str):
            if text_pair is None:
                return [text], None
            # transformers v5 treats an empty second text of a single pair as no pair at all
            # ([CLS] A [SEP]), but keeps empty pairs inside a batch ([CLS] A [SEP] [SEP]).
            pair = self._check_text(text_pair, "text_pair")
            return [text], [pair] if pair else None
        if not isinstance(text, (list, tuple)):
            raise TypeError(f"text must be a str or a list of str, got {type(text).__name__}")
        texts = [self._check_text(t) for t in text]
        if text_pair is None:
            return texts, None
        if isinstance(text_pair, str) or not isinstance(text_pair, (list, tuple)):
            raise TypeError("with a list of texts, text_pair must be a list of str of the same length")
        pairs = list(text_pair)
        if len(pairs) != len(texts):
            raise MinialbertError(f"text and text_pair have different lengths ({len(texts)} and {len(pairs)})")
        return texts, [self._check_text(t, "text_pair") for t in pairs]

    def _ids_and_offsets(self, texts: list[str]) -> tuple[list[list[int]], list[list[tuple[int, int]]]]:
        results = [self._segmenter.segment_with_offsets(t) for t in texts]
        return [r[0] for r in results], [r[1] for r in results]

    # ---------------------------------------------------------------- decoding

    def decode(self, ids: Sequence[int] | Any, skip_special_tokens: bool = False) -> str:
        """Text of `ids`, as transformers decodes it ("▁" becomes a space; the first token's
        leading one is dropped)."""
        if hasattr(ids, "tolist"):
            ids = ids.tolist()
        if isinstance(ids, int):
            ids = [ids]
        special = set(self.all_special_ids) if skip_special_tokens else set()
        tokens = [self._id_to_piece(int(i)) for i in ids if int(i) not in special]
        out = []
        for k, tok in enumerate(tokens):
            if k == 0:
                out.append(tok.replace(SPIECE_UNDERLINE, ""))
            else:
                out.append(tok.replace(SPIECE_UNDERLINE, " "))
        return "".join(out)

    def batch_decode(self, sequences: Sequence[Sequence[int]], skip_special_tokens: bool = False) -> list[str]:
        return [self.decode(s, skip_special_tokens=skip_special_tokens) for s in sequences]


def _first(*values: Any) -> Any:
    """The first value that is not None."""
    return next(v for v in values if v is not None)
