"""Few-shot examples: of the item's own question type, drawn per item with the seed, never the item.

Question type (`question_type_of`): PACUTE `category/subcategory` (e.g. `composition/spelling`,
`affix_inflection/infix`), hierarchical `level<L>/<subcategory>`, CUTE's task, LangGame's task
(from the generator's `task_type`, else read from the question: contains, starts_with, ends_with,
longest, shortest, most_letter), multi-digit addition one type. A category pools many question
types (composition GEN: spelling, counting, character finding), so examples drawn per category
would show most items the answer format of another question.

Each scored item gets its own draw: `random.Random(f"{seed}:{benchmark}:{fmt}:{id}:fewshot")`
samples n items of its question type and format other than itself (an example may be scored
elsewhere as an item of its own, as lm-eval does with `fewshot_split == test_split`). When the
question type has fewer than n other items (hierarchical has single-item subcategories), the draw
comes from the parent (`parent_of`: PACUTE category, hierarchical level) and the item is listed in
`fallbacks`; a parent that is too small too is an error.

The examples are written into the item's context (`build_context`), each as the item itself would
be: its context, ` `, its answer and `SHOT_SEPARATOR` (a blank line), then the scored item's context.
"""

from __future__ import annotations

import random
import re
from collections import defaultdict
from typing import Any

from morphcpt.errors import MorphcptError
from morphcpt.evaluation.scoring import SHOT_SEPARATOR, TARGET_DELIMITER, format_context

LANGGAME_TASKS = (("most_letter", re.compile(r"\bmost letter\b")), ("longest", re.compile(r"\blongest\b")),
                  ("shortest", re.compile(r"\bshortest\b")), ("starts_with", re.compile(r"\bstarts? with\b")),
                  ("ends_with", re.compile(r"\bends? with\b")), ("contains", re.compile(r"\bcontains?\b")))


def langgame_task(question: str) -> str:
    for name, pattern in LANGGAME_TASKS:
        if pattern.search(question):
            return name
    return "other"


def question_type_of(item: dict[str, Any]) -> str:
    benchmark = item["benchmark"]
    if benchmark == "pacute":
        return f"{item['category']}/{item['subcategory']}"
    if benchmark == "hierarchical":
        return f"level{item['level']}/{item['subcategory']}"
    if benchmark == "langgame":
        category = item["category"]
        return category if category != "langgame" else langgame_task(item["prompt"])
    return str(item["category"])


def parent_of(item: dict[str, Any]) -> str:
    """The wider pool when a question type is too small: PACUTE category, hierarchical level."""
    if item["benchmark"] == "hierarchical":
        return f"level{item['level']}"
    return str(item["category"])


def answer_text(item: dict[str, Any]) -> str:
    return item["choices"][item["gold"]] if item["format"] == "mcq" else item["answer"]


def draw_shots(items: list[dict[str, Any]], scored: list[dict[str, Any]], n: int, seed: int,
               benchmark: str) -> tuple[dict[str, list[dict[str, Any]]], list[str]]:
    """Per scored item id, n examples of its format and question type (never itself), and the ids
    whose examples came from the parent pool."""
    if n == 0:
        return {it["id"]: [] for it in scored}, []
    by_type: dict[tuple[str, str], list] = defaultdict(list)
    by_parent: dict[tuple[str, str], list] = defaultdict(list)
    for it in items:
        by_type[(it["format"], question_type_of(it))].append(it)
        by_parent[(it["format"], parent_of(it))].append(it)
    shots, fallbacks = {}, []
    for it in scored:
        pool = [x for x in by_type[(it["format"], question_type_of(it))] if x["id"] != it["id"]]
        if len(pool) < n:
            fallbacks.append(it["id"])
            pool = [x for x in by_parent[(it["format"], parent_of(it))] if x["id"] != it["id"]]
            if len(pool) < n:
                raise MorphcptError(
                    f"{benchmark} {it['format']} item {it['id']}: {len(pool)} other items of "
                    f"{question_type_of(it)!r} and {parent_of(it)!r}, too few for {n}-shot; lower "
                    f"evaluation.num_fewshot.{it['format']}")
        rng = random.Random(f"{seed}:{benchmark}:{it['format']}:{it['id']}:fewshot")
        shots[it["id"]] = rng.sample(pool, n)
    return shots, fallbacks


def build_context(item: dict[str, Any], shots: list[dict[str, Any]]) -> str:
    """The text the model continues: every example as `<context> <answer>\\n\\n`, then the item's context."""
    examples = "".join(format_context(s["prompt"]) + TARGET_DELIMITER + answer_text(s) + SHOT_SEPARATOR
                       for s in shots)
    return examples + format_context(item["prompt"])
