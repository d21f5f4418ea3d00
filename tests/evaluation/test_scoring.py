"""Per-item metrics: tie-aware MCQ accuracy, chance correction, GEN answer extraction."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from morphcpt.evaluation.scoring import extract_answer, format_context, gen_metrics, mcq_metrics


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
    assert (m["exact_match"], m["prefix_match"], m["contains_match"]) == (exact, prefix, contains)


def test_extract_answer_unbalanced_quote_is_kept():
    assert extract_answer(' "abc') == '"abc'


def test_format_context():
    assert format_context("Spell out \"bahay\".") == "Spell out \"bahay\".\nAnswer:"
    assert format_context("[ a, b]. Which is longest? Answer:") == "[ a, b]. Which is longest? Answer:"
    assert format_context("295+592=") == "295+592="
