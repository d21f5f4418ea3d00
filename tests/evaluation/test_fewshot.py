"""Few-shot examples of the item's own question type, drawn per item, never the item; prompts as a
reviewer would print them; the scored option ends with the tokens every example's answer ends with."""

from __future__ import annotations

import pytest

from benchmark_fixtures import SOURCE_ROWS, write_jsonl
from morphcpt.errors import MorphcptError
from morphcpt.evaluation.fewshot import draw_shots, langgame_task, question_type_of
from morphcpt.evaluation.items import normalize_file
from morphcpt.evaluation.task_folder import plan_tasks

BENCHMARKS = ("pacute", "hierarchical", "cute", "langgame", "multi_digit_addition")


@pytest.fixture(scope="module")
def items(tmp_path_factory):
    root = tmp_path_factory.mktemp("fewshot")
    return {b: normalize_file(write_jsonl(root / f"{b}.jsonl", SOURCE_ROWS[b]()), b, seed=5) for b in BENCHMARKS}


@pytest.mark.parametrize("benchmark", ["pacute", "hierarchical", "langgame", "multi_digit_addition"])
def test_every_scored_items_examples_share_its_question_type(items, benchmark):
    plan = plan_tasks(items[benchmark], benchmark, seed=5, num_fewshot={"mcq": 2, "gen": 2}, limit=None)
    by_id = {it["id"]: it for it in items[benchmark]}
    checked = 0
    for fmt, part in plan.items():
        fallbacks = set(part["fallbacks"])
        for rows in part["subtasks"].values():
            for row in rows:
                assert len(row["shot_ids"]) == 2 and row["id"] not in row["shot_ids"]
                shots = [by_id[i] for i in row["shot_ids"]]
                assert all(s["format"] == fmt for s in shots)
                if row["id"] not in fallbacks:
                    assert {question_type_of(s) for s in shots} == {row["question_type"]}, row["id"]
                    checked += 1
        assert len(fallbacks) <= len(items[benchmark]) // 10  # only the rare small question types
    assert checked
    if benchmark == "pacute":  # one category, several question types: never mixed
        types = {r["question_type"] for rows in plan["gen"]["subtasks"].values() for r in rows}
        assert {"composition/spelling", "composition/character_counting", "affix_inflection/infix",
                "affix_identification/infix", "morphological_extraction/inflected_affix_extraction"} <= types


def test_examples_are_drawn_per_item_with_the_seed(items):
    docs = [it for it in items["pacute"] if it["format"] == "gen"]
    shots, _ = draw_shots(docs, docs, 2, seed=5, benchmark="pacute")
    again, _ = draw_shots(docs, docs, 2, seed=5, benchmark="pacute")
    other, _ = draw_shots(docs, docs, 2, seed=6, benchmark="pacute")
    ids = lambda d: {k: [s["id"] for s in v] for k, v in d.items()}  # noqa: E731
    assert ids(shots) == ids(again) and ids(shots) != ids(other)
    spelling = [it["id"] for it in docs if it["subcategory"] == "spelling"]
    assert len({tuple(ids(shots)[i]) for i in spelling}) > 1  # not one draw for the whole subtask


def test_a_question_type_too_small_for_its_parent_is_an_error(items):
    docs = [it for it in items["hierarchical"] if it["format"] == "mcq"][:3]
    with pytest.raises(MorphcptError, match="too few for 5-shot"):
        draw_shots(docs, docs, 5, seed=1, benchmark="hierarchical")


def test_langgame_task_from_the_question():
    assert langgame_task("The available choices are: [ how, method]. Which word contains 't'? Answer:") == "contains"
    assert langgame_task("Which of the options has the most letter 'a's? These are the options: [ a]. Answer:") == \
        "most_letter"
    assert langgame_task("The option strings: [ a]. What option is the longest? Answer:") == "longest"


def test_prompts_reach_the_model_without_escapes_or_glued_quotes(items):
    for benchmark in BENCHMARKS:
        for it in items[benchmark]:
            assert "\\" not in it["prompt"], it["id"]
            assert "word'" not in it["prompt"], it["id"]
    counting = next(it for it in items["pacute"] if it["subcategory"] == "character_counting")
    assert counting["prompt"].startswith('How many "a" are in the word "bahay"?')
    glued = next(it for it in items["hierarchical"] if it["id"] == "hierarchical_mcq_00000")
    assert "of the word 'bahay' (0)?" in glued["prompt"]


def test_only_english_prompts_are_offered(source_files):
    with pytest.raises(MorphcptError, match="unknown prompt language 'tl'"):
        normalize_file(source_files["pacute"], "pacute", seed=1, language="tl")
