"""The benchmark-free sources of the root lexicon and dev gold set (lexicon_sources, dev_gold), on
small files written here: the pinned sources themselves are not in the repository."""

from __future__ import annotations

import pytest

from morphcpt.errors import MorphcptError
from morphcpt.tokenization import dev_gold
from morphcpt.tokenization.affixes import default_inventory
from morphcpt.tokenization.lexicon_sources import (
    Paradigm, check_sha256, is_dev_lemma, lexicon_counts, read_frequency_words, read_unimorph,
)


def test_frequency_words_and_unimorph_readers(tmp_path):
    freq = tmp_path / "tl_full.txt"
    freq.write_text("ang 40\nAng 2\nnagluto 3\n")
    assert read_frequency_words(freq) == {"ang": 42, "nagluto": 3}
    freq.write_text("ang 40\nnagluto three\n")
    with pytest.raises(MorphcptError, match=r"tl_full.txt:2: expected 'word count'"):
        read_frequency_words(freq)
    tgl = tmp_path / "tgl"
    tgl.write_text("gáwa'\tgináwa'\tV;PFV;PFOC\naral\tnag-aral\tV;PFV;AGFOC\nkilala\tnakipag- kilala\tV;PFV;AGFOC\n")
    cells, skipped = read_unimorph(tgl)
    assert cells == [Paradigm("gawa", "ginawa", "V;PFV;PFOC"), Paradigm("aral", "nag-aral", "V;PFV;AGFOC")]
    assert [line_no for line_no, _ in skipped] == [3]  # a space inside the form: reported, not silently dropped
    tgl.write_text("gawa\tginawa\n")
    with pytest.raises(MorphcptError, match=r"tgl:1: expected 'lemma<TAB>form<TAB>features'"):
        read_unimorph(tgl)
    with pytest.raises(MorphcptError, match=r"tgl: sha256 .* is not the pinned 0+"):
        check_sha256(tgl, "0" * 64)


def test_dev_lemmas_are_held_out_of_the_lexicon_counts():
    lemmas = [f"root{i}" for i in range(400)]
    held = [lemma for lemma in lemmas if is_dev_lemma(lemma)]
    assert 60 < len(held) < 140  # about one in four, by a seeded hash: the same split every run
    assert held == [lemma for lemma in lemmas if is_dev_lemma(lemma)]
    cells = [Paradigm(held[0], "nag" + held[0], "V"), Paradigm(lemmas[1] if lemmas[1] not in held else lemmas[2], "x", "V")]
    counts = lexicon_counts({"ang": 5}, cells)
    assert "nag" + held[0] not in counts and counts["x"] == 1 and counts["ang"] == 5


def test_dev_gold_derivation_by_the_known_root_and_by_hand():
    inventory = default_inventory()
    assert dev_gold.oracle_cuts("tinatanggap", "tanggap", inventory) == [1, 3, 4]  # t|in|a|tanggap
    assert dev_gold.oracle_cuts("nag-aakusa", "akusa", inventory) == [3, 4, 5]  # nag|-|a|akusa
    assert dev_gold.oracle_cuts("hahagurin", "hagod", inventory) is None  # not explained: annotated by hand
    assert dev_gold.segmentation_cuts(dev_gold.HAND["hahagurin"]) == ("hahagurin", [2, 7])
    assert dev_gold.kind_of("nagluluto", [3, 5]) == "reduplicated"
    assert dev_gold.kind_of("kumain", [1, 3]) == "infixed"
    assert dev_gold.kind_of("nagluto", [3]) == "affixed" and dev_gold.kind_of("bahay", []) == "monomorphemic"
    lemma = next(f"taas{i}" for i in range(100) if dev_gold.is_dev_lemma(f"taas{i}"))
    with pytest.raises(MorphcptError, match="no analysis explains"):
        dev_gold.unimorph_dev_records([Paradigm(lemma, "xyzzy" + lemma, "V")], {})
    records = dev_gold.hand_records(["# comment", "pinaka|ma|taas taas  # stacked"], {"pinakamataas": 7}, "hand.txt")
    assert records[0]["boundaries"] == [6, 8] and records[0]["frequency"] == 7 and records[0]["root"] == "taas"
    with pytest.raises(MorphcptError, match=r"hand.txt:1: expected 'segmentation root'"):
        dev_gold.hand_records(["pinaka|ma|taas"], {}, "hand.txt")
