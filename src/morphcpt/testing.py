"""Small, locally made fixtures shared by tests, benchmarks and the demo.

`sentencepiece_tokenizer_dir` trains a tiny SentencePiece BPE with byte fallback (Gemma's style:
pad 0, eos 1, bos 2, unk 3, `▁` for space, no dummy prefix) on Tagalog text and saves it as a
Hugging Face fast-tokenizer folder. The HF side is built directly from the trained model's pieces
with the `tokenizers` library rather than through transformers' slow->fast converter, because that
converter imports sentencepiece's generated protobuf module, which is incompatible with the pinned
protobuf runtime.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tempfile
from pathlib import Path

from morphcpt.errors import MorphcptError

REPO_ROOT = Path(__file__).resolve().parents[2]
TAGALOG_CORPUS = REPO_ROOT / "data" / "tagalog_corpus.jsonl"

SPECIAL_PIECES = {"<pad>": 0, "<eos>": 1, "<bos>": 2, "<unk>": 3}
_DONE_MARKER = "morphcpt_fixture.json"


def tagalog_texts(path: Path = TAGALOG_CORPUS) -> list[str]:
    """The `text` of every line of the project's Tagalog corpus (data/tagalog_corpus.jsonl)."""
    texts = []
    with open(path, encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, 1):
            try:
                texts.append(json.loads(line)["text"])
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise MorphcptError(f"{path}:{line_no}: expected a JSON object with a 'text' field ({exc})") from exc
    return texts


def _train_sentencepiece(texts: list[str], vocab_size: int, seed: int) -> bytes:
    import sentencepiece as spm

    model = io.BytesIO()
    # BPE training has no random choices; `seed` only names the cache entry. One thread keeps the
    # merge order independent of scheduling.
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(texts),
        model_writer=model,
        model_type="bpe",
        vocab_size=vocab_size,
        hard_vocab_limit=False,
        byte_fallback=True,
        pad_id=0, eos_id=1, bos_id=2, unk_id=3,
        pad_piece="<pad>", eos_piece="<eos>", bos_piece="<bos>", unk_piece="<unk>",
        normalization_rule_name="identity",
        remove_extra_whitespaces=False,
        add_dummy_prefix=False,
        split_digits=True,
        allow_whitespace_only_pieces=True,
        character_coverage=1.0,
        max_sentence_length=1 << 20,
        num_threads=1,
        minloglevel=2,
    )
    return model.getvalue()


def _hf_tokenizer_from_sentencepiece(model_path: Path):
    """A `transformers.GemmaTokenizerFast` equivalent to the SentencePiece BPE model at model_path."""
    import sentencepiece as spm
    from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers
    from transformers import GemmaTokenizerFast

    sp = spm.SentencePieceProcessor(model_file=str(model_path))
    vocab = {sp.id_to_piece(i): i for i in range(sp.get_piece_size())}
    # Merges as transformers' SentencePieceExtractor derives them: every split of a piece into two
    # pieces, ranked by the merged piece's id (BPE pieces are stored in merge order).
    merges = []
    for piece, piece_id in vocab.items():
        if sp.is_control(piece_id) or sp.is_unknown(piece_id) or sp.is_byte(piece_id):
            continue
        for cut in range(1, len(piece)):
            left, right = piece[:cut], piece[cut:]
            if left in vocab and right in vocab:
                merges.append((piece_id, vocab[left], vocab[right], left, right))
    merges.sort()
    bpe = models.BPE(
        vocab=vocab,
        merges=[(left, right) for *_, left, right in merges],
        unk_token="<unk>",
        fuse_unk=True,
        byte_fallback=True,
    )
    tokenizer = Tokenizer(bpe)
    tokenizer.normalizer = normalizers.Replace(" ", "▁")
    tokenizer.decoder = decoders.Sequence(
        [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()]
    )
    tokenizer.add_special_tokens([AddedToken(p, special=True, normalized=False) for p in SPECIAL_PIECES])
    return GemmaTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<bos>", eos_token="<eos>", unk_token="<unk>", pad_token="<pad>",
        add_bos_token=True, add_eos_token=False,
    )


def sentencepiece_tokenizer_dir(dest: Path, texts: list[str] | None = None, vocab_size: int = 800, seed: int = 0) -> Path:
    """Train (or reuse) a small SentencePiece BPE with byte fallback and save it as an HF fast tokenizer.

    The folder holds `tokenizer.model` (the SentencePiece model) and the HF files, loadable with
    `transformers.AutoTokenizer.from_pretrained(dest)`. Same texts/vocab_size/seed -> same files.
    A folder made with other arguments is replaced.
    """
    dest = Path(dest)
    texts = tagalog_texts() if texts is None else list(texts)
    if not texts:
        raise MorphcptError("sentencepiece_tokenizer_dir: no training texts given")
    key = hashlib.sha256(json.dumps([texts, vocab_size, seed], ensure_ascii=False).encode()).hexdigest()
    marker = dest / _DONE_MARKER
    if marker.is_file():
        try:
            if json.loads(marker.read_text())["key"] == key:
                return dest
        except (json.JSONDecodeError, KeyError):
            pass

    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}-", dir=dest.parent))
    try:
        (tmp / "tokenizer.model").write_bytes(_train_sentencepiece(texts, vocab_size, seed))
        _hf_tokenizer_from_sentencepiece(tmp / "tokenizer.model").save_pretrained(str(tmp))
        (tmp / _DONE_MARKER).write_text(json.dumps({"key": key, "vocab_size": vocab_size, "seed": seed}))
        if dest.exists():
            shutil.rmtree(dest)
        tmp.rename(dest)  # the marker is only ever seen inside a complete folder
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


# Conversion bugs, as the negative controls of the parity gates (tests/models/test_import_export.py)
# and of their calibration (benchmarks/parity_error.py): copies of an HF Llama folder whose weights
# differ the way a broken converter would make them differ. The third bug of those controls, a
# wrong rope theta, is a config override (`rope_theta=10000.0`), not a weight change.

def swap_first_q_heads(weights: dict, head_dim: int) -> None:
    """Layer 0's first two query heads trade places (a QKV split that misorders heads)."""
    q = weights["model.layers.0.self_attn.q_proj.weight"]
    first, second = [*range(head_dim)], [*range(head_dim, 2 * head_dim)]
    q[first + second] = q[second + first].clone()


def transpose_first_up_proj(weights: dict) -> None:
    """Layer 0's MLP up projection transposed and reshaped back (a converter that transposes)."""
    up = weights["model.layers.0.mlp.up_proj.weight"]
    weights["model.layers.0.mlp.up_proj.weight"] = up.t().contiguous().reshape(up.shape)


def corrupted_hf_copy(src: Path, dest: Path, transform) -> Path:
    """A copy of the HF model folder `src` at `dest` whose weights went through `transform(state_dict)`."""
    from safetensors.torch import load_file, save_file

    shutil.copytree(src, dest)
    weights = load_file(dest / "model.safetensors")
    transform(weights)
    save_file(weights, dest / "model.safetensors", metadata={"format": "pt"})
    return Path(dest)
