"""One view of an HF fast tokenizer of either style, in raw bytes.

Byte-level BPE (Llama 3, tiktoken-style) spells bytes with GPT-2's byte->unicode map (`Ġ` = space);
SentencePiece BPE with byte fallback (Gemma) spells space as `▁` and unknown bytes as `<0xNN>`.
Everything downstream (split table, StochasTok, Patok) works on each token's raw bytes, so the two
styles look the same and nothing is ever decoded to text and re-tokenized.
"""

from __future__ import annotations

import hashlib
import json
import re
import struct
from functools import lru_cache
from pathlib import Path

from morphcpt.errors import MorphcptError

# Token kinds.
NORMAL = 0  # an ordinary vocabulary token: may be split and may be produced by splitting
SPECIAL = 1  # special or added token (bos, eos, reserved, ...): never split, never produced
BYTE_FALLBACK = 2  # SentencePiece `<0xNN>`: never split, never produced by splitting

_BYTE_PIECE = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")


@lru_cache(maxsize=1)
def byte_level_decoder() -> dict[str, int]:
    """GPT-2's unicode character -> byte map used by byte-level BPE vocabularies."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars = list(printable)
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return {chr(c): b for b, c in zip(printable, chars)}


def _contains_type(node, type_name: str) -> bool:
    """Whether a tokenizer.json component (or a Sequence of them) has the given type."""
    if not isinstance(node, dict):
        return False
    if node.get("type") == type_name:
        return True
    parts = node.get("decoders") or node.get("pretokenizers") or node.get("normalizers") or []
    return any(_contains_type(p, type_name) for p in parts)


def _token_text(value) -> str | None:
    """A special token as tokenizer_config.json writes it: a string or {"content": ...}."""
    if isinstance(value, dict):
        return value.get("content")
    return value if isinstance(value, str) else None


class TokenizerAdapter:
    """Token <-> bytes, token kinds, canonical encoding and a vocabulary fingerprint.

    Built from a `tokenizers.Tokenizer` (the Rust backend of every HF fast tokenizer) plus the bos/eos
    token strings; `from_dir` reads them from an HF tokenizer folder without importing transformers.
    """

    def __init__(self, backend, bos_token: str | None, eos_token: str | None, source: str = "<memory>"):
        self.source = source
        self.backend = backend
        # the components' own JSON (small), not the whole tokenizer's
        decoder_spec = json.loads(backend.decoder.__getstate__()) if backend.decoder is not None else None
        pre_spec = json.loads(backend.pre_tokenizer.__getstate__()) if backend.pre_tokenizer is not None else None
        self.byte_level = _contains_type(decoder_spec, "ByteLevel") or _contains_type(pre_spec, "ByteLevel")
        byte_fallback = bool(getattr(backend.model, "byte_fallback", False))
        self.style = "byte_level" if self.byte_level else "sentencepiece"

        added = backend.get_added_tokens_decoder()
        id_to_piece = backend.get_vocab(with_added_tokens=True)
        # len(tokenizer) in transformers: every id, added tokens included
        self.vocab_size = max(id_to_piece.values()) + 1 if id_to_piece else 0
        pieces: list[str | None] = [None] * self.vocab_size
        for piece, idx in id_to_piece.items():
            pieces[idx] = piece
        missing = [i for i, p in enumerate(pieces) if p is None]
        if missing:
            raise MorphcptError(f"{source}: vocabulary has holes (first missing id {missing[0]}); ids must be 0..{self.vocab_size - 1}")

        decoder = byte_level_decoder()
        self.token_bytes: list[bytes] = []
        self.kinds: list[int] = []
        for idx, piece in enumerate(pieces):
            if idx in added:
                # Added tokens are never split or produced. A non-special, normalized added token is
                # matched against normalized text, where SentencePiece's `▁` stands for a space.
                token = added[idx]
                text = token.content
                if not token.special and token.normalized and not self.byte_level:
                    text = text.replace("\u2581", " ")
                kind, raw = SPECIAL, text.encode("utf-8")
            elif byte_fallback and (m := _BYTE_PIECE.match(piece)):
                kind, raw = BYTE_FALLBACK, bytes([int(m.group(1), 16)])
            elif self.byte_level:
                try:
                    kind, raw = NORMAL, bytes(decoder[c] for c in piece)
                except KeyError as exc:
                    raise MorphcptError(f"{source}: token {idx} {piece!r} is not in the byte-level alphabet") from exc
            else:
                kind, raw = NORMAL, piece.replace("\u2581", " ").encode("utf-8")
            self.token_bytes.append(raw)
            self.kinds.append(kind)

        self.bos_id = self._special_id(bos_token, "bos")
        self.eos_id = self._special_id(eos_token, "eos")
        # Canonical encoding treats text as text: a document containing "<eos>" or "<|begin_of_text|>"
        # is spelled with normal tokens, so special ids appear only where the pipeline puts them.
        self.backend.encode_special_tokens = True
        self.fingerprint = self._fingerprint()
        self._check_no_dummy_prefix()

    @classmethod
    def from_dir(cls, path: str | Path) -> "TokenizerAdapter":
        """An HF fast-tokenizer folder: tokenizer.json plus bos/eos from tokenizer_config.json."""
        from tokenizers import Tokenizer

        path = Path(path)
        if not (path / "tokenizer.json").is_file():
            raise MorphcptError(f"{path}: no tokenizer.json; pass a Hugging Face fast-tokenizer folder")
        try:
            backend = Tokenizer.from_file(str(path / "tokenizer.json"))
        except Exception as exc:  # noqa: BLE001 - any loader failure is a user-facing file problem
            raise MorphcptError(f"{path / 'tokenizer.json'}: could not load ({type(exc).__name__}: {exc})") from exc
        specials: dict = {}
        for name in ("special_tokens_map.json", "tokenizer_config.json"):  # the config wins
            file = path / name
            if file.is_file():
                try:
                    specials.update(json.loads(file.read_text(encoding="utf-8")))
                except json.JSONDecodeError as exc:
                    raise MorphcptError(f"{file}: not valid JSON ({exc})") from exc
        return cls(backend, _token_text(specials.get("bos_token")), _token_text(specials.get("eos_token")), source=str(path))

    @classmethod
    def from_hf(cls, hf_tokenizer, source: str = "<memory>") -> "TokenizerAdapter":
        """From a loaded transformers fast tokenizer (its backend is copied, not modified)."""
        if not getattr(hf_tokenizer, "is_fast", False):
            raise MorphcptError(f"{source}: not a fast (Rust) tokenizer; save it with tokenizer.json")
        from tokenizers import Tokenizer

        backend = Tokenizer.from_str(hf_tokenizer.backend_tokenizer.to_str())
        return cls(backend, hf_tokenizer.bos_token, hf_tokenizer.eos_token, source=source)

    def _special_id(self, token: str | None, name: str) -> int:
        idx = self.backend.token_to_id(token) if token else None
        if idx is None:
            raise MorphcptError(f"{self.source}: tokenizer has no {name} token ({name}_token={token!r} in tokenizer_config.json)")
        return int(idx)

    def _fingerprint(self) -> str:
        # sha256 over (id u32, kind u8, length u32, bytes) for every id, little-endian
        head = struct.Struct("<IBI").pack
        return hashlib.sha256(b"".join(
            head(idx, kind, len(raw)) + raw for idx, (raw, kind) in enumerate(zip(self.token_bytes, self.kinds))
        )).hexdigest()

    def _check_no_dummy_prefix(self) -> None:
        for probe in ("a b", "ab"):
            got = self.decode_bytes(self.encode(probe))
            if got != probe.encode("utf-8"):
                raise MorphcptError(
                    f"{self.source}: encoding {probe!r} gives bytes {got!r}; the tokenizer adds a dummy prefix or "
                    "normalizes text, which re-encoding pieces cannot undo (unsupported tokenizer)"
                )

    # -- encoding -------------------------------------------------------------------------------
    def encode(self, text: str) -> list[int]:
        """Canonical ids of text, without bos/eos."""
        return self.backend.encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return [e.ids for e in self.backend.encode_batch(texts, add_special_tokens=False)]

    def decode_bytes(self, ids) -> bytes:
        """Lossless concatenation of the tokens' bytes (special tokens give their text)."""
        return b"".join(map(self.token_bytes.__getitem__, ids))

    def is_special(self, idx: int) -> bool:
        return self.kinds[idx] == SPECIAL

    @property
    def special_ids(self) -> list[int]:
        return [i for i, k in enumerate(self.kinds) if k == SPECIAL]

    def __repr__(self) -> str:
        return f"TokenizerAdapter({self.source!r}, style={self.style}, vocab_size={self.vocab_size})"
