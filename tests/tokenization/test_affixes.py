"""Affix inventory and affix tokens; the hand-checked Patok re-segmentations."""

from __future__ import annotations

import pytest

from morphcpt.errors import MorphcptError
from morphcpt.tokenization.affixes import INVENTORY_PATH, affix_token_ids, default_inventory, load_inventory


def test_inventory_groups_and_comments():
    inv = default_inventory()
    for prefix in ("mag", "nag", "pag", "ma", "na", "pa", "ka", "i", "ipa", "pinaka", "makipag"):
        assert prefix in inv.prefixes
    assert set(inv.infixes) == {"um", "in"}
    for suffix in ("an", "in", "han", "hin"):
        assert suffix in inv.suffixes
    text = INVENTORY_PATH.read_text(encoding="utf-8").splitlines()
    for group in ("[prefixes]", "[infixes]", "[suffixes]"):
        assert text[text.index(group) + 1].startswith("#")  # each group opens with a comment line


def test_bad_inventory_names_the_line(tmp_path):
    bad = tmp_path / "affixes.txt"
    bad.write_text("[prefixes]\nmag-\n[sufixes]\n-an\n")
    with pytest.raises(MorphcptError, match=r"affixes.txt:3: unknown group"):
        load_inventory(bad)


def test_affix_tokens_cover_space_marks_and_case(llama3_adapter, sp_adapter):
    a = llama3_adapter
    found = {a.token_bytes[i] for i in affix_token_ids(a.token_bytes, a.kinds, default_inventory())}
    for form in (b"mag", b" mag", b"Mag", b" Mag", b" nag", b"um", b" um", b"in", b" in", b"an", b"ka", b" ka"):
        assert form in found, form
    assert b" the" not in found and b"ng" not in found
    s = sp_adapter
    sp_found = {s.token_bytes[i] for i in affix_token_ids(s.token_bytes, s.kinds, default_inventory())}
    assert {b"um", b"in"} <= sp_found and any(f.startswith(b" ") for f in sp_found)  # `▁` variants


@pytest.mark.parametrize("word, pieces", [
    ("maganda", ["ma", "ganda"]), ("kumain", ["k", "um", "ain"]), ("gaganda", ["ga", "ganda"]),
    ("nagluto", ["nag", "luto"]), (" nagluto", [" nag", "luto"]),
])
def test_hand_checked_resegmentation(adapter, processors, word, pieces):
    """The word is cut at its affixes and each piece re-encoded: the output has a token boundary at
    every affix cut and equals the concatenated encodings of the pieces."""
    proc = processors(adapter, "patok", {"cut_prop": 1.0})
    assert proc.cut_text(word) == pieces
    ids = proc.resegment(word)
    assert ids == [i for p in pieces for i in adapter.encode(p)]
    offsets, pos = set(), 0
    for i in ids:
        pos += len(adapter.token_bytes[i])
        offsets.add(pos)
    cut_points = {sum(len(p.encode()) for p in pieces[:k]) for k in range(1, len(pieces) + 1)}
    assert cut_points <= offsets
    assert adapter.decode_bytes(ids) == word.encode()


def test_kumain_isolates_um_on_llama3(llama3_adapter, processors):
    proc = processors(llama3_adapter, "patok", {"cut_prop": 1.0})
    pieces = [llama3_adapter.token_bytes[i] for i in proc.resegment("kumain")]
    assert b"um" in pieces
