"""The step-0 gate's own batch (docs/design.md §6, issue 18): many short documents packed into each
sequence, so the declared attention objective and the control differ on it by far more than the
gate's tolerance.

The two objectives a packed sequence can mean ("causal": one causal mask over the sequence, positions
0..n-1; "document": each document alone, positions restarting) differ only after a document boundary.
The run's first global batch has few of them (the demo's: 0.035% apart, under the fp32 tolerance's
5x), so the gate decides on this batch instead: documents of the run's own shards, each cut to
GATE_DOC_TOKENS tokens (bos, its first tokens, eos), chosen with the run's seed and packed back to
back into GATE_SEQUENCES sequences of seq_length tokens. Every sample is finished the way the
training dataset finishes its own (megatron-core's GPTDataset: labels shifted by one, its masks and
position ids for the declared objective, no loss on eod), from that dataset's config, so NeMo sees it
exactly as it would see training data. Driver (HF reference) and worker (NeMo's forward) build it
with the same function and compare digests.
"""

from __future__ import annotations

from typing import Any

from morphcpt.errors import MorphcptError

GATE_DOC_TOKENS = 8  # tokens per gate document: bos, the document's first 6 tokens, eos
GATE_SEQUENCES = 4  # sequences in the gate batch


def gate_texts(prefixes: list[str], length: int, eod_id: int, seed: int, sequences: int = GATE_SEQUENCES,
               doc_tokens: int = GATE_DOC_TOKENS) -> list[Any]:
    """`sequences` token arrays of `length`, each packed with short documents of the shards at
    `prefixes` (seeded choice among the documents with at least `doc_tokens` - 1 tokens before their
    eos). A document is cut to its first `doc_tokens` - 1 tokens and closed with `eod_id`."""
    import numpy as np
    from megatron.core.datasets.indexed_dataset import IndexedDataset

    datasets = [IndexedDataset(p) for p in prefixes]
    candidates = [(d, int(i)) for d, ds in enumerate(datasets)
                  for i in np.nonzero(np.asarray(ds.sequence_lengths) >= doc_tokens)[0]]
    if not candidates:
        raise MorphcptError(f"{prefixes[0]}...: no document of {doc_tokens} tokens or more in the shards; the "
                            "step-0 gate batch needs some (the corpus is too short)")
    per_sequence = -(-length // doc_tokens)
    rng = np.random.default_rng(seed)
    picks = rng.permutation(len(candidates))
    picks = np.resize(picks, sequences * per_sequence)  # repeats documents only if the shards have too few
    texts = []
    for s in range(sequences):
        docs = [np.append(datasets[d][i][:doc_tokens - 1], eod_id)
                for d, i in (candidates[k] for k in picks[s * per_sequence:(s + 1) * per_sequence])]
        texts.append(np.concatenate(docs)[:length].astype(np.int64))
    return texts


def _gpt_dataset(train_ds):
    """The megatron-core GPTDataset behind the training dataset (a BlendedDataset holds several)."""
    return getattr(train_ds, "datasets", [train_ds])[0]


def gate_samples(train_ds, spec: dict[str, Any], eod_id: int) -> list[dict[str, Any]]:
    """The gate batch as samples of the training dataset `train_ds` (tokens, labels, loss_mask,
    position_ids and, when the dataset makes one, attention_mask)."""
    import torch
    from megatron.core.datasets.gpt_dataset import _get_ltor_masks_and_position_ids

    ds = _gpt_dataset(train_ds)
    cfg = ds.config
    extra = bool(getattr(cfg, "add_extra_token_to_sequence", True))
    seq_length = int(spec["training"]["seq_length"])
    pad = ds._pad_token_id
    samples = []
    mbs = int(spec["training"]["micro_batch_size"])
    sequences = -(-GATE_SEQUENCES // mbs) * mbs  # whole micro batches
    for text in gate_texts(spec["shard_prefixes"], seq_length + int(extra), eod_id, int(spec["seed"]), sequences):
        text = torch.from_numpy(text).long()
        if extra:
            tokens, labels = text[:-1].contiguous(), text[1:].contiguous()
        else:  # what GPTDataset does without the extra token
            tokens, labels = text, torch.roll(text, shifts=-1, dims=0)
            labels[-1] = pad
        attention_mask, loss_mask, position_ids = _get_ltor_masks_and_position_ids(
            tokens, cfg.tokenizer.eod, cfg.reset_position_ids, cfg.reset_attention_mask, cfg.eod_mask_loss,
            cfg.create_attention_mask)
        loss_mask[labels == pad] = 0.0
        tokens[tokens == pad] = 0
        labels[labels == pad] = 0
        sample = {"tokens": tokens, "labels": labels, "loss_mask": loss_mask, "position_ids": position_ids}
        if cfg.create_attention_mask:
            sample["attention_mask"] = attention_mask
        samples.append(sample)
    return samples


def gate_micro_batches(samples: list[dict[str, Any]], micro_batch_size: int) -> list[dict[str, Any]]:
    """The samples collated into micro batches as the data loader would (stacked per key)."""
    import torch

    if len(samples) % micro_batch_size:  # gate_samples makes whole micro batches
        raise MorphcptError(f"the step-0 gate batch ({len(samples)} sequences) does not split into micro batches of "
                            f"{micro_batch_size}")
    return [{k: torch.stack([s[k] for s in samples[i:i + micro_batch_size]]) for k in samples[0]}
            for i in range(0, len(samples), micro_batch_size)]


def document_count(samples: list[dict[str, Any]], eod_id: int) -> int:
    """Documents in the batch (each sample's eods, plus one for a document cut at the end)."""
    import torch

    return sum(int((torch.as_tensor(s["tokens"]) == eod_id).sum()) + 1 for s in samples)
