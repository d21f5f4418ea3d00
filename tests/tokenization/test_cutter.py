"""The affix cutter: hand-checked segmentations (the gaps issue 12 lists), the root lexicon and its
builder, and the cutter's scores on the hand-reviewed dev gold set."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from morphcpt.errors import MorphcptError
from morphcpt.tokenization.cutter import (
    LEXICON_PATH, Cutter, RootLexicon, analyses, build_lexicon, default_cutter, load_closed_class, text_cuts,
)
from morphcpt.tokenization.affixes import default_inventory
from morphcpt.tokenization.tokstats import cutter_stats, read_gold_records

DEV_GOLD = Path(__file__).with_name("data") / "dev_gold.jsonl"


@pytest.mark.parametrize("word, expected", [
    # the project's first examples
    ("maganda", "ma|ganda"), ("kumain", "k|um|ain"), ("gaganda", "ga|ganda"), ("nagluto", "nag|luto"),
    ("naglalaro", "nag|la|laro"), ("pinakamataas", "pinaka|mataas"), ("nakipagkita", "nakipag|kita"),
    ("bumili", "b|um|ili"), ("umakyat", "um|akyat"), ("basahin", "basa|hin"), ("Nagluto", "Nag|luto"),
    ("KUMAIN", "K|UM|AIN"), ("bumbero", "bumbero"), ("ang", "ang"), ("sa", "sa"),
    # the gaps issue 12 lists: ni- metathesis, infix after a prefix, pina/kina hiding -in-, nasal
    # substitution, -an vs -nan, vowel and infixed reduplication, no false CV-reduplication cuts
    ("nilipad", "ni|lipad"), ("niyakap", "ni|yakap"), ("magsumikap", "mag|s|um|ikap"), ("kinamot", "k|in|amot"),
    ("manahi", "ma|nahi"), ("pamatay", "pa|matay"), ("labanan", "laban|an"), ("aalis", "a|alis"),
    ("kinukuha", "k|in|u|kuha"), ("babae", "babae"),
    # frequent plain words the old rules cut
    ("isang", "isang"), ("kanyang", "kanyang"), ("maynila", "maynila"), ("sining", "sining"),
    # hyphens are cut on both sides
    ("mag-aral", "mag|-|aral"), ("araw-araw", "araw|-|araw"),
])
def test_hand_checked_segmentations(word, expected):
    assert "|".join(default_cutter().segment(word)) == expected


def test_text_cuts_skip_words_cut_off_at_an_edge():
    assert text_cuts(" nagluto si") == [4]
    assert text_cuts("nagluto si", before="a") == []  # the word started before this text
    assert text_cuts(" basahin") == [5]
    assert text_cuts(" basahin", after="g") == []  # the word goes on after this text


def test_every_analysis_has_plausible_roots():
    inventory = default_inventory()
    found = {a.cuts: a.roots for a in analyses("manguha", inventory)}
    assert "kuha" in found[(2,)]  # nasal substitution undone: ma + nguha <- kuha
    for analysis in analyses("pangkat", inventory):
        assert all(not r.startswith("ngk") for r in analysis.roots)


def test_lexicon_builder_and_loader(tmp_path):
    """A tiny frequency list: roots attested by two or more forms are kept with their mass; a very
    frequent word whose 'root' is rare is not cut."""
    csv_file = tmp_path / "freq.csv"
    rows = [("luto", 5), ("nagluto", 3), ("magluto", 2), ("lutuin", 1), ("isang", 5000), ("sang", 2), ("pasang", 1)]
    csv_file.write_text("normalized,rank,frequency\n" + "".join(f"{w},{i},{c}\n" for i, (w, c) in enumerate(rows, 1)))
    out = tmp_path / "lex.txt"
    assert build_lexicon(csv_file, out) > 0
    lexicon = RootLexicon.load(out)
    forms, mass = lexicon.roots["luto"]
    assert forms == 4 and mass == 11  # luto, nagluto, magluto, lutuin (lutu|in <- luto)
    cutter = Cutter(lexicon=lexicon)
    assert cutter.segment("nagluto") == ["nag", "luto"]
    assert cutter.segment("isang") == ["isang"]  # 'sang' occurs 3 times next to 5000 isang


def test_bad_lexicon_and_frequency_files_name_the_line(tmp_path):
    bad = tmp_path / "lex.txt"
    bad.write_text("# header\nluto\t5\t4\n")
    with pytest.raises(MorphcptError, match=r"lex.txt:2: expected"):
        RootLexicon.load(bad)
    csv_file = tmp_path / "freq.csv"
    csv_file.write_text("normalized,rank,frequency\nluto,1,5\nkain,2,many\n")
    with pytest.raises(MorphcptError, match=r"freq.csv:3: expected"):
        build_lexicon(csv_file, tmp_path / "out.txt")


def test_packaged_lexicon_states_its_provenance():
    head = " ".join(line for line in LEXICON_PATH.read_text(encoding="utf-8").splitlines()[:5] if line.startswith("#"))
    for fact in ("pacute-bench", "dcab16b", "MIT", "word_frequencies.csv"):
        assert fact in head


def test_dev_gold_set_is_well_formed():
    records = read_gold_records(DEV_GOLD)
    assert len(records) >= 300
    kinds = {r["kind"] for r in records}
    assert kinds == {"affixed", "infixed", "reduplicated", "monomorphemic"}
    for line in DEV_GOLD.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        pieces = record["segmentation"].split("|")
        assert "".join(pieces) == record["word"]
        assert record["boundaries"] == [sum(map(len, pieces[:k])) for k in range(1, len(pieces))]
        assert record["source"].startswith("data/")


def test_cutter_meets_the_issue_targets_on_the_dev_gold_set():
    stats = cutter_stats(read_gold_records(DEV_GOLD))
    assert stats["cut_f1"] >= 0.88
    assert stats["false_cut_rate"] <= 0.03
    assert stats["monomorphemic_words"] >= 200


def test_closed_class_words_are_never_cut_nor_their_linker_forms(tmp_path):
    cutter = default_cutter()
    for word in ("natin", "namin", "iyon", "kanila", "kanilang", "iyong", "paano"):
        assert cutter.word_cuts(word) == (), word
    bad = tmp_path / "closed.txt"
    bad.write_text("# pronouns\nako\nIkaw siya\n")
    with pytest.raises(MorphcptError, match=r"closed.txt:3: 'Ikaw siya' is not one lower-case word"):
        load_closed_class(bad)
