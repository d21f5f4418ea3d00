"""Our shards through megatron-core's GPTDataset (what NeMo's PreTrainingDataModule builds), on CPU,
with the train stage's flags: eod = the tokenizer's eos, reset_position_ids, reset_attention_mask,
eod_mask_loss."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from shard_testlib import ByteAdapter, byte_rng, duplicating_processor, small_corpus, write_jsonl

from morphcpt.shards import ShardSpec, build_shard


@pytest.fixture
def single_process_group(tmp_path):
    """megatron-core asks torch.distributed for the rank, as under NeMo: one gloo process on CPU."""
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'pg_store'}", rank=0, world_size=1)
    try:
        yield
    finally:
        dist.destroy_process_group()


def _gpt_dataset(prefixes, tmp_path, eod, seq_length=32, n_samples=40):
    from megatron.core.datasets.blended_megatron_dataset_builder import BlendedMegatronDatasetBuilder
    from megatron.core.datasets.gpt_dataset import GPTDataset, GPTDatasetConfig

    tokenizer = SimpleNamespace(eod=eod, pad=-1, unique_identifiers={"class": "test"})
    config = GPTDatasetConfig(random_seed=1, sequence_length=seq_length, blend=([str(p) for p in prefixes], None),
                              split="100,0,0", path_to_cache=str(tmp_path / "index_cache"), tokenizer=tokenizer,
                              reset_position_ids=True, reset_attention_mask=True, eod_mask_loss=True,
                              create_attention_mask=False)
    train, _, _ = BlendedMegatronDatasetBuilder(GPTDataset, [n_samples, 0, 0], lambda: True, config).build()
    return train


@pytest.mark.parametrize("processor", [None, duplicating_processor], ids=["vanilla", "expanded"])
def test_gpt_dataset_draws_samples_from_our_shards(tmp_path, processor, single_process_group):
    adapter = ByteAdapter()
    prefixes = []
    for c in range(2):
        chunk = write_jsonl(tmp_path / f"chunk_{c:03d}.jsonl", small_corpus(30, seed=c))
        prefix = tmp_path / "shards" / f"chunk_{c:03d}"
        spec = ShardSpec(mode="vanilla" if processor is None else "stochastok", params={}, seed=1, chunk=f"{c:03d}")
        build_shard(chunk, prefix, adapter, processor or (lambda ids, rng: (ids, {})), spec, byte_rng, progress=False)
        prefixes.append(prefix)
    dataset = _gpt_dataset(prefixes, tmp_path, eod=adapter.eos_id)
    assert len(dataset) >= 40
    saw_document_boundary = False
    for i in range(len(dataset)):
        sample = dataset[i]
        tokens, labels, loss_mask, positions = (np.asarray(sample[k]) for k in ("tokens", "labels", "loss_mask", "position_ids"))
        assert tokens.shape == labels.shape == (32,)
        assert tokens.max() < adapter.vocab_size and tokens.min() >= 0
        assert np.array_equal(tokens[1:], labels[:-1])  # next-token labels
        eod_at = np.flatnonzero(tokens == adapter.eos_id)
        assert (loss_mask[eod_at] == 0).all()  # eod_mask_loss: no loss on predicting after eos
        for j in eod_at[eod_at < 31]:  # reset_position_ids: a new document starts at position 0
            saw_document_boundary = True
            assert positions[j + 1] == 0 and tokens[j + 1] == adapter.bos_id
    assert saw_document_boundary
