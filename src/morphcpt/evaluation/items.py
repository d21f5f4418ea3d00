"""Normalize every benchmark's source schema to one internal item schema.

Internal item (one JSON object per line):
    MCQ: {id, benchmark, format: "mcq", category, subcategory, level, prompt, choices, gold}
         `gold` is an index into `choices`.
    GEN: {id, benchmark, format: "gen", category, subcategory, level, prompt, answer}

Source schemas and their gold labels (each a trap the earlier pipeline fell into):
- pacute (pacute-bench composition/manipulation/syllabification/morphological_*): rows
  `{category, subcategory, prompts: [{text_en, text_tl, mcq_options?, choice1..N?}], label, id}`.
  MCQ rows are those with `mcq_options`. Gold is `label` A-D -> `choiceN` (checked against
  `mcq_options.correct`). Syllabification stress_disambiguation MCQ rows have no `choiceN` and
  `label: null`: their choices are `mcq_options` (correct + incorrect*). Stress identification
  has 2 options. GEN gold is `label`.
  A local PACUTE file is the concatenation of the PACUTE JSONL files, rows unchanged (an optional
  `subset` field, e.g. "composition_mcq", is allowed and ignored: the format comes from the row).
- hierarchical: `{level, category, subcategory, prompt_en, prompt_tl, options?, answer, ...}`;
  gold is `answer`, at a random position in `options` (never `options[0]`).
- cute: `{question, answer, task_type, id}` (GEN only; 14 task types incl. swap_word).
- langgame / multi_digit_addition: `{question, answer, options?, id}`; the source stores the gold
  at `options[0]`. Gold is `answer` (checked to be in `options`), and options are shuffled.

PACUTE and hierarchical MCQ prompts ask about "the option(s)" (e.g. "Which option contains the most
'a'?"), so their prompts list the options (`Options:` then one `- option` per line, in scoring
order); LangGame questions list them already, and addition needs none. Every MCQ is scored by the
log-likelihood of each option's text after `Answer:`.

Every MCQ item's choices are de-duplicated (identical strings are one answer; several source rows
list the gold twice) and shuffled with an RNG seeded by (seed, benchmark, id), so the order never
depends on file order and the gold is never systematically first.
"""

from __future__ import annotations

import argparse
import codecs
import json
import random
import re
import sys
from pathlib import Path
from typing import Any, Iterable, Iterator

from morphcpt.errors import MorphcptError

BENCHMARK_SCHEMAS = {
    "pacute": "pacute",
    "hierarchical": "hierarchical",
    "cute": "cute",
    "langgame": "options_first",
    "multi_digit_addition": "options_first",
}
# Only English: the scaffold (`Options:`, `Answer:`) and CUTE, LangGame and addition are English, so
# the Filipino texts of PACUTE and hierarchical would make mixed-language prompts (one language per run).
LANGUAGES = ("en",)
MCQ_KEYS = ("id", "benchmark", "format", "category", "subcategory", "level", "prompt", "choices", "gold")
GEN_KEYS = ("id", "benchmark", "format", "category", "subcategory", "level", "prompt", "answer")
LETTERS = "ABCDEFGH"


class _Row:
    """A source row with its location, for one-line errors that name file and line."""

    def __init__(self, data: dict[str, Any], where: str):
        self.data = data
        self.where = where

    def fail(self, message: str) -> MorphcptError:
        return MorphcptError(f"{self.where}: {message}")

    def get(self, key: str, kind: type | tuple[type, ...] = str, required: bool = True) -> Any:
        if key not in self.data or self.data[key] is None:
            if required:
                raise self.fail(f"missing field {key!r}; is this file in the benchmark's source schema?")
            return None
        value = self.data[key]
        if not isinstance(value, kind):
            raise self.fail(f"field {key!r} should be {kind}, found {type(value).__name__}")
        return value


def read_source_rows(path: str | Path) -> Iterator[_Row]:
    """JSON lines of a source file; a bad line stops with file:line (never skipped)."""
    path = Path(path)
    if not path.is_file():
        raise MorphcptError(f"{path}: benchmark file not found")
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            where = f"{path}:{lineno}"
            if lineno == 1:
                raw = raw.removeprefix(codecs.BOM_UTF8)  # accepted, as by every JSONL reader here
            line = decode_line(raw, where)
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError as exc:
                raise MorphcptError(f"{where}: not valid JSON ({exc.msg}); fix or remove the line") from None
            if not isinstance(data, dict):
                raise MorphcptError(f"{where}: expected a JSON object per line")
            yield _Row(data, where)


def decode_line(raw: bytes, where: str) -> str:
    """One line as UTF-8; otherwise a one-line error naming file:line and the byte."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MorphcptError(f"{where}: not valid UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1}); "
                            "re-save the file as UTF-8") from None


ESCAPED_QUOTE = re.compile(r"\\([\"'])")
# `the word'sagip'` (75 hierarchical prompts per format): a quote glued to the preceding word
GLUED_QUOTE = re.compile(r"(?<=[A-Za-z])'(?=[^'\s]+')")


def clean_prompt(text: str) -> str:
    """The prompt as a reviewer would print it: backslash-escaped quotes (`\\"dyip\\"`, 1,500 PACUTE
    prompts) become quotes, a quoted word glued to the word before gets its space."""
    return GLUED_QUOTE.sub(" '", ESCAPED_QUOTE.sub(r"\1", text))


def _check_prompt(row: _Row, prompt: Any) -> None:
    if not isinstance(prompt, str) or not prompt.strip():
        raise row.fail("empty prompt: the model would be asked nothing; fix or remove the row")


def _shuffle_rng(seed: int, benchmark: str, item_id: str) -> random.Random:
    # str seeds are hashed with SHA-512 by `random` (not PYTHONHASHSEED): stable across runs.
    return random.Random(f"{seed}:{benchmark}:{item_id}")


def list_choices(prompt: str, choices: list[str]) -> str:
    """The question with its options shown, in the order they are scored."""
    return prompt.rstrip() + "\nOptions:\n" + "\n".join(f"- {c}" for c in choices)


def make_mcq(row: _Row, *, benchmark: str, item_id: str, category: str, subcategory: str | None,
             level: int | None, prompt: str, choices: list[str], gold_text: str, seed: int,
             show_choices: bool = False) -> dict[str, Any]:
    """An MCQ item: choices stripped, de-duplicated and shuffled; `gold` indexes `gold_text`.
    `show_choices`: the question refers to its options ("Which option ..."), so the prompt lists
    them (after shuffling); the model still scores each option's text as the continuation."""
    _check_prompt(row, prompt)
    if not choices:
        raise row.fail("empty list of options: an MCQ item needs at least 2")
    cleaned = [c.strip() if isinstance(c, str) else c for c in choices]
    if any(not isinstance(c, str) or not c for c in cleaned):
        raise row.fail("every option must be a non-empty string")
    unique = list(dict.fromkeys(cleaned))
    gold_text = gold_text.strip()
    if gold_text not in unique:
        raise row.fail(f"the gold answer {gold_text!r} is not among the options {unique}")
    if len(unique) < 2:
        raise row.fail(f"fewer than 2 distinct options {unique}: the item cannot discriminate")
    _shuffle_rng(seed, benchmark, item_id).shuffle(unique)
    if show_choices:
        prompt = list_choices(prompt, unique)
    return {"id": item_id, "benchmark": benchmark, "format": "mcq", "category": category,
            "subcategory": subcategory, "level": level, "prompt": prompt, "choices": unique,
            "gold": unique.index(gold_text)}


def make_gen(row: _Row, *, benchmark: str, item_id: str, category: str, subcategory: str | None,
             level: int | None, prompt: str, answer: str) -> dict[str, Any]:
    _check_prompt(row, prompt)
    if not answer.strip():
        raise row.fail("empty gold answer")
    if "\n" in answer.strip():
        raise row.fail("the gold answer spans lines: generation stops at the first newline, so it could never match")
    return {"id": item_id, "benchmark": benchmark, "format": "gen", "category": category,
            "subcategory": subcategory, "level": level, "prompt": prompt, "answer": answer.strip()}


# -- one normalizer per source schema ----------------------------------------------------------
def _pacute(row: _Row, benchmark: str, seed: int, language: str) -> dict[str, Any]:
    prompts = row.get("prompts", list)
    if len(prompts) != 1 or not isinstance(prompts[0], dict):
        raise row.fail(f"expected exactly one prompt object in 'prompts', found {len(prompts)}")
    p = _Row(prompts[0], row.where + " prompts[0]")
    common = dict(benchmark=benchmark, item_id=row.get("id"), category=row.get("category"),
                  subcategory=row.get("subcategory", required=False), level=None,
                  prompt=clean_prompt(p.get(f"text_{language}")))
    if "mcq_options" not in p.data:
        return make_gen(row, answer=row.get("label"), **common)
    options = p.get("mcq_options", dict)
    correct = options.get("correct")
    if not isinstance(correct, str):
        raise p.fail("mcq_options has no 'correct' string")
    numbered = sorted((k for k in p.data if k.startswith("choice") and k[6:].isdigit()), key=lambda k: int(k[6:]))
    if numbered:
        if [int(k[6:]) for k in numbered] != list(range(1, len(numbered) + 1)):
            raise p.fail(f"choice keys are not choice1..choiceN: {numbered}")
        choices = [p.get(k) for k in numbered]
        label = row.get("label")
        if len(label) != 1 or label not in LETTERS[: len(choices)]:
            raise row.fail(f"label {label!r} is not a letter A-{LETTERS[len(choices) - 1]}")
        gold_text = choices[LETTERS.index(label)]
        if gold_text.strip() != correct.strip():
            raise row.fail(f"label {label} points at {gold_text!r} but mcq_options.correct is {correct!r}")
    else:
        # stress_disambiguation rows: no choiceN and no label; the options are the answer set
        choices = [correct] + [v for k, v in sorted(options.items()) if k != "correct"]
        gold_text = correct
    return make_mcq(row, choices=choices, gold_text=gold_text, seed=seed, show_choices=True, **common)


def _hierarchical(row: _Row, benchmark: str, seed: int, language: str) -> dict[str, Any]:
    level = row.get("level", int)
    common = dict(benchmark=benchmark, item_id=row.get("id"), category=row.get("category"),
                  subcategory=row.get("subcategory", required=False), level=level,
                  prompt=clean_prompt(row.get(f"prompt_{language}")))
    answer = row.get("answer")
    if "options" not in row.data:
        return make_gen(row, answer=answer, **common)
    # gold is `answer`; its position in `options` is random (never assume options[0])
    return make_mcq(row, choices=row.get("options", list), gold_text=answer, seed=seed, show_choices=True, **common)


def _cute(row: _Row, benchmark: str, seed: int, language: str) -> dict[str, Any]:
    if "options" in row.data:
        raise row.fail("CUTE is a generation benchmark; rows with 'options' are not CUTE rows")
    task = row.get("task_type")
    return make_gen(row, benchmark=benchmark, item_id=row.get("id"), category=task, subcategory=None,
                    level=None, prompt=row.get("question"), answer=row.get("answer"))


def _options_first(row: _Row, benchmark: str, seed: int, language: str) -> dict[str, Any]:
    common = dict(benchmark=benchmark, item_id=row.get("id"),
                  category=row.get("task_type", required=False) or benchmark, subcategory=None,
                  level=None, prompt=row.get("question"))
    answer = row.get("answer")
    if "options" not in row.data:
        return make_gen(row, answer=answer, **common)
    options = row.get("options", list)
    if answer not in options:
        raise row.fail(f"answer {answer!r} is not among the options {options}")
    return make_mcq(row, choices=options, gold_text=answer, seed=seed, **common)


NORMALIZERS = {"pacute": _pacute, "hierarchical": _hierarchical, "cute": _cute, "options_first": _options_first}


def normalize_rows(rows: Iterable[_Row], benchmark: str, seed: int, language: str = "en") -> list[dict[str, Any]]:
    if benchmark not in BENCHMARK_SCHEMAS:
        raise MorphcptError(f"unknown benchmark {benchmark!r}; known: {', '.join(BENCHMARK_SCHEMAS)}")
    if language not in LANGUAGES:
        raise MorphcptError(f"unknown prompt language {language!r}; known: {', '.join(LANGUAGES)}")
    normalize = NORMALIZERS[BENCHMARK_SCHEMAS[benchmark]]
    items: list[dict[str, Any]] = []
    seen: dict[str, str] = {}
    for row in rows:
        item = normalize(row, benchmark, seed, language)
        if item["id"] in seen:
            raise row.fail(f"duplicate id {item['id']!r} (first at {seen[item['id']]})")
        seen[item["id"]] = row.where
        items.append(item)
    if not items:
        raise MorphcptError(f"{benchmark}: the source has no rows")
    return items


def normalize_file(path: str | Path, benchmark: str, seed: int, language: str = "en") -> list[dict[str, Any]]:
    return normalize_rows(read_source_rows(path), benchmark, seed, language)


# -- the internal items file -------------------------------------------------------------------
def validate_item(item: Any, where: str) -> dict[str, Any]:
    if not isinstance(item, dict) or item.get("format") not in ("mcq", "gen"):
        raise MorphcptError(f"{where}: not a normalized item (format must be mcq or gen); "
                            "create items with `morphcpt benchmark-items`")
    keys = MCQ_KEYS if item["format"] == "mcq" else GEN_KEYS
    missing = [k for k in keys if k not in item]
    if missing:
        raise MorphcptError(f"{where}: item lacks {missing}; create items with `morphcpt benchmark-items`")
    if item["format"] == "mcq":
        choices, gold = item["choices"], item["gold"]
        if not (isinstance(choices, list) and len(choices) >= 2 and isinstance(gold, int)
                and 0 <= gold < len(choices)):
            raise MorphcptError(f"{where}: MCQ item needs >= 2 choices and 0 <= gold < len(choices)")
    return item


def read_items(path: str | Path) -> list[dict[str, Any]]:
    path = Path(path)
    if not path.is_file():
        raise MorphcptError(f"{path}: items file not found; create it with `morphcpt benchmark-items`")
    items = []
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            line = decode_line(raw, f"{path}:{lineno}")
            if line.strip():
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise MorphcptError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None
                items.append(validate_item(obj, f"{path}:{lineno}"))
    if not items:
        raise MorphcptError(f"{path}: no items")
    return items


def items_to_jsonl(items: Iterable[dict[str, Any]]) -> str:
    return "".join(json.dumps(item, ensure_ascii=False) + "\n" for item in items)


def write_items(items: list[dict[str, Any]], path: str | Path) -> None:
    """Write atomically: a partial items file never exists under the final name."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(items_to_jsonl(items), encoding="utf-8")
    tmp.replace(path)


# -- CLI: morphcpt benchmark-items ---------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--benchmark", required=True, choices=sorted(BENCHMARK_SCHEMAS))
    parser.add_argument("--input", required=True, help="a benchmark file in its source schema (JSONL)")
    parser.add_argument("--seed", type=int, default=1234, help="option shuffling seed (default 1234)")
    parser.add_argument("--language", choices=LANGUAGES, default="en", help="prompt language (PACUTE, hierarchical)")


def run(args: argparse.Namespace) -> int:
    items = normalize_file(args.input, args.benchmark, args.seed, args.language)
    sys.stdout.write(items_to_jsonl(items))
    return 0
