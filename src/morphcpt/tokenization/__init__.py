"""Tokenization modes (vanilla, StochasTok, Patok) over HF fast tokenizers. See docs/design.md §4.

    adapter = TokenizerAdapter.from_dir(path)
    proc = make_processor(adapter, "patok", {"cut_prop": 0.8}, cache_dir=None)
    out_ids, counters = proc(adapter.encode(text), document_rng(seed, chunk, doc_index))
"""

from morphcpt.tokenization.adapter import BYTE_FALLBACK, NORMAL, SPECIAL, TokenizerAdapter
from morphcpt.tokenization.modes import DEFAULT_PARAMS, MODES, document_rng, make_processor, resolve_params
from morphcpt.tokenization.split_table import SplitTable, build_split_table, split_table_for

__all__ = [
    "BYTE_FALLBACK", "DEFAULT_PARAMS", "MODES", "NORMAL", "SPECIAL", "SplitTable", "TokenizerAdapter",
    "build_split_table", "document_rng", "make_processor", "resolve_params", "split_table_for",
]
