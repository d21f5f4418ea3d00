"""Per-item metrics: tie-aware MCQ accuracy, chance correction, GEN answer extraction."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from morphcpt.evaluation.scoring import (answer_normalisers, extract_answer, format_context, gen_metrics,
                                         item_metrics, mcq_continuation, mcq_metrics)


def test_ties_are_never_broken_towards_index_0():
    m = mcq_metrics([-1.0, -1.0, -2.0, -3.0], ["a", "b", "c", "d"], gold=0)
    assert m["acc"] == 0.5
    assert mcq_metrics([-1.0, -1.0, -2.0, -3.0], ["a", "b", "c", "d"], gold=1)["acc"] == 0.5
    assert mcq_metrics([-1.0, -1.0, -2.0, -3.0], ["a", "b", "c", "d"], gold=2)["acc"] == 0.0


def test_acc_norm_uses_per_character_likelihood():
    # the long gold has the lower total but the higher per-character log-likelihood
    m = mcq_metrics([-6.0, -4.0], ["abcdefghij", "ab"], gold=0)
    assert m["acc"] == 0.0 and m["acc_norm"] == 1.0


def test_chance_correction():
    assert mcq_metrics([0.0, -1.0], ["a", "b"], gold=0)["acc_chance_corrected"] == 1.0
    assert mcq_metrics([0.0, -1.0, -1.0, -1.0], list("abcd"), gold=1)["acc_chance_corrected"] == pytest.approx(-1 / 3)
    assert mcq_metrics([0.0, -1.0], ["a", "b"], gold=1)["chance"] == 0.5


@settings(deadline=None, derandomize=True, max_examples=60)
@given(st.integers(2, 6).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n - 1))))
def test_equal_scores_give_exactly_chance(n_gold):
    n, gold = n_gold
    m = mcq_metrics([-2.5] * n, [f"c{i}" for i in range(n)], gold)
    assert m["acc"] == pytest.approx(1 / n) and m["acc_chance_corrected"] == pytest.approx(0.0)


@pytest.mark.parametrize("generation, answer, exact, prefix, contains", [
    (" kumain\nQuestion: next", "kumain", 1, 1, 1),
    (' " i n d i v i d u a l "', "i n d i v i d u a l", 1, 1, 1),   # CUTE's quoted answers
    (' "Yes"', "Yes", 1, 1, 1),
    (" yes", "Yes", 0, 0, 0),                                          # case matters
    (" kumain na", "kumain", 0, 1, 1),
    (" ang kumain", "kumain", 0, 0, 1),
    ("\nkumain", "kumain", 0, 0, 0),                                   # stop sequence first
    (" She is happy among.", "She is happy among.", 1, 1, 1),         # the gold's period is kept
])
def test_gen_metrics(generation, answer, exact, prefix, contains):
    m = gen_metrics(generation, answer)
    assert m["normalized_match"] == m["exact_match"]  # whitespace-only normalisation: same on these
    assert (m["exact_match"], m["prefix_match"], m["contains_match"]) == (exact, prefix, contains)


def test_extract_answer_unbalanced_quote_is_kept():
    assert extract_answer(' "abc') == '"abc'


def test_format_context():
    assert format_context("Spell out \"bahay\".") == "Spell out \"bahay\".\nAnswer:"
    assert format_context("[ a, b]. Which is longest? Answer:") == "[ a, b]. Which is longest? Answer:"
    assert format_context("295+592=") == "295+592="


def _gen(benchmark, answer, category="c", subcategory=None):
    return {"id": "x", "benchmark": benchmark, "format": "gen", "category": category, "subcategory": subcategory,
            "level": None, "prompt": "p", "answer": answer}


# Real answers of the public benchmarks (pacute-bench@dcab16b) and what a model plausibly writes.
@pytest.mark.parametrize("item, generation, normalized, strict", [
    # PACUTE affix extraction: the hyphens of the 100 golds give the affix type; another type is wrong
    (_gen("pacute", "naka-", "morphological_extraction", "inflected_affix_extraction"), " naka-", 1, 1),
    (_gen("pacute", "naka-", "morphological_extraction", "inflected_affix_extraction"), " naka-.", 1, 0),
    (_gen("pacute", "mapang-", "morphological_extraction", "inflected_affix_extraction"), " mapang", 0, 0),
    (_gen("pacute", "naka-", "morphological_extraction", "inflected_affix_extraction"), " nag-", 0, 0),
    (_gen("pacute", "-in-", "morphological_extraction", "inflected_affix_extraction"), " -in-", 1, 1),
    (_gen("pacute", "-in-", "morphological_extraction", "inflected_affix_extraction"), " -in", 0, 0),  # suffix
    (_gen("pacute", "-in-", "morphological_extraction", "inflected_affix_extraction"), " in-", 0, 0),  # prefix
    (_gen("pacute", "-an", "morphological_extraction", "inflected_affix_extraction"), " an-", 0, 0),
    (_gen("pacute", "-an", "morphological_extraction", "inflected_affix_extraction"), " -an", 1, 1),
    # affixation identification: the gold is the bare affix
    (_gen("pacute", "um", "affix_identification", "infix"), " um", 1, 1),
    (_gen("pacute", "um", "affix_identification", "infix"), " -um-", 0, 0),
    (_gen("hierarchical", "in -an", "decomposition", "affix_identification_suffix"), " in-an", 0, 0),  # inner hyphen kept
    # a trailing period: the same for numbers and words
    (_gen("multi_digit_addition", "887", "multi_digit_addition"), " 887.", 1, 0),
    (_gen("pacute", "kain", "morphological_extraction", "inflected_root_extraction"), " kain.", 1, 0),
    (_gen("pacute", "kain", "morphological_extraction", "inflected_root_extraction"), " kain,", 0, 0),
    (_gen("multi_digit_addition", "887", "multi_digit_addition"), " +887", 1, 0),
    (_gen("multi_digit_addition", "887", "multi_digit_addition"), " 878", 0, 0),
    (_gen("pacute", "10", "composition", "length_counting"), " 10", 1, 1),
    # CUTE yes/no: case-insensitive
    (_gen("cute", "Yes", "contains_char"), " yes", 1, 0),
    (_gen("cute", "No", "contains_word"), ' "no"', 1, 0),
    (_gen("cute", "No", "contains_word"), " Yes", 0, 0),
    # CUTE word tasks: case and quotes of the sentence
    (_gen("cute", "they both enjoyed their soup.", "del_word"), ' " They both enjoyed their soup. "', 1, 0),
    (_gen("cute", "She decided to steal it collection when Lily wasn't looking.", "ins_word"),
     " she decided to steal it collection when Lily wasn\u2019t looking.", 1, 0),
    (_gen("cute", "is Ben scared.", "swap_word"), " Ben is scared.", 0, 0),
    # case and diacritics are the task: kept
    (_gen("pacute", "GOYABIN", "manipulation", "uppercasing"), " Goyabin", 0, 0),
    (_gen("pacute", "siláng", "syllabification", "stress_disambiguation"), " silang", 0, 0),
    (_gen("pacute", "siláng", "syllabification", "stress_disambiguation"), " sila\u0301ng", 1, 0),  # NFC-equal
    (_gen("cute", "stattes", "ins_char"), " Stattes", 0, 0),
    (_gen("cute", "i n d i v i d u a l", "spell"), " i n d i v i d u a l", 1, 1),
    (_gen("cute", "i n d i v i d u a l", "spell"), " i  n d i v i d u a l", 1, 0),  # whitespace runs
])
def test_normalisers_on_real_answers(item, generation, normalized, strict):
    m = item_metrics(item, generation)
    assert (m["normalized_match"], m["exact_match"]) == (normalized, strict), answer_normalisers(item)


def test_normaliser_choice():
    base = ("whitespace", "final_period")
    assert answer_normalisers(_gen("multi_digit_addition", "1511")) == (*base, "integer")
    assert answer_normalisers(_gen("cute", "No", "contains_char")) == (*base, "yes_no")
    assert answer_normalisers(_gen("pacute", "mapang-", "x", "inflected_affix_extraction")) == base
    assert answer_normalisers(_gen("cute", "is Ben scared.", "swap_word")) == (*base, "sentence")
    assert answer_normalisers(_gen("pacute", "GOYABIN", "manipulation", "uppercasing")) == base
    assert answer_normalisers(_gen("langgame", " no", "langgame")) == base  # a word, not a verdict
    assert answer_normalisers(_gen("hierarchical", "-aarag", "decomposition", "root_extraction")) == base


def test_mcq_continuation_ends_with_the_terminator():
    assert mcq_continuation("103") == "103\n\n"
