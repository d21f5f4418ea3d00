"""Small benchmark rows in every SOURCE schema, written for this project in the style of the
public files (never copied from them)."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

CUTE_TASKS = ("spell", "spell_inverse", "contains_char", "contains_word", "orth", "sem", "ins_char",
              "ins_word", "del_char", "del_word", "sub_char", "sub_word", "swap_char", "swap_word")
WORDS = ["bahay", "aklat", "lungsod", "kaibigan", "paaralan", "maganda", "sulat", "takbo", "kain",
         "inom", "laro", "basa", "tulog", "bili", "ulan", "puno", "dagat", "bundok", "ilog", "araw"]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def pacute_rows(n_per_kind: int = 8, seed: int = 3) -> list[dict]:
    """PACUTE rows: 4-choice MCQ with letter labels at every position, 2-option stress MCQ,
    stress-disambiguation MCQ without choiceN/label, a row whose gold is listed twice, GEN rows."""
    rng = random.Random(seed)
    rows = []
    for i in range(n_per_kind * 4):
        w = WORDS[i % len(WORDS)]
        correct = " ".join(w)
        wrong = [" ".join(w[:-1]), " ".join(w + "x"), " ".join(w[::-1]) + " q"]
        pos = i % 4
        choices = wrong[:]
        choices.insert(pos, correct)
        prompt = {"text_en": f'Which option spells out "{w}" ({i})?', "text_tl": f'Alin ang baybay ng "{w}" ({i})?',
                  "mcq_options": {"correct": correct, "incorrect1": wrong[0], "incorrect2": wrong[1], "incorrect3": wrong[2]},
                  **{f"choice{k + 1}": c for k, c in enumerate(choices)}}
        rows.append({"category": "composition", "subcategory": "spelling", "prompts": [prompt],
                     "label": "ABCD"[pos], "id": f"composition_mcq_{i:05d}"})
        rows.append({"category": "composition", "subcategory": "spelling",
                     "prompts": [{"text_en": f'Spell out "{w}" ({i}).', "text_tl": f'Baybayin ang "{w}" ({i}).'}],
                     "label": correct, "id": f"composition_gen_{i:05d}"})
    for i in range(n_per_kind):
        w = WORDS[i]
        stressed, other = w[:2], w[2:]
        pos = rng.randrange(2)
        choices = [other]
        choices.insert(pos, stressed)
        rows.append({"category": "syllabification", "subcategory": "stress_identification",
                     "prompts": [{"text_en": f'Which syllable of "{w}" is stressed ({i})?', "text_tl": f'Aling pantig ng "{w}" ({i})?',
                                  "mcq_options": {"correct": stressed, "incorrect1": other},
                                  "choice1": choices[0], "choice2": choices[1]}],
                     "label": "AB"[pos], "id": f"syllabification_mcq_{i:05d}"})
        rows.append({"category": "syllabification", "subcategory": "stress_disambiguation",
                     "prompts": [{"text_en": f'How is "{w}" written with its accent ({i})?', "text_tl": f'Paano isusulat ang "{w}" ({i})?',
                                  "mcq_options": {"correct": w + "\u0301", "incorrect1": w, "incorrect2": "\u00e1" + w[1:],
                                                  "incorrect3": w}}],
                     "label": None, "id": f"syllabification_mcq_{100 + i:05d}"})
    # the gold listed twice (as correct and as a distractor), label pointing at the second copy
    rows.append({"category": "manipulation", "subcategory": "duplication",
                 "prompts": [{"text_en": "Duplicate the 2nd letter of 'gipas'.", "text_tl": "Ulitin ang ika-2 titik ng 'gipas'.",
                              "mcq_options": {"correct": "giipas", "incorrect1": "giipas", "incorrect2": "gipls", "incorrect3": "gpas"},
                              "choice1": "gipls", "choice2": "giipas", "choice3": "giipas", "choice4": "gpas"}],
                 "label": "C", "id": "manipulation_mcq_00000"})
    for i, (w, gold, wrong) in enumerate([("bahay", "bbahay", ["bahay", "bahy"]), ("aklat", "aaklat", ["aklt", "klat"])], 1):
        rows.append({"category": "manipulation", "subcategory": "duplication",
                     "prompts": [{"text_en": f"Duplicate the 1st letter of '{w}'.", "text_tl": f"Ulitin ang unang titik ng '{w}'.",
                                  "mcq_options": {"correct": gold, "incorrect1": wrong[0], "incorrect2": wrong[1]},
                                  "choice1": wrong[0], "choice2": gold, "choice3": wrong[1]}],
                     "label": "B", "id": f"manipulation_mcq_{i:05d}"})
    rows += counting_rows() + affix_rows()
    return rows


def counting_rows(n: int = 6) -> list[dict]:
    """Composition counting items whose prompts carry backslash-escaped quotes, as 700 prompts of
    the public composition/morphological_extraction files do (`\\"dyip\\"` in the JSON text)."""
    rows = []
    for i in range(n):
        w = WORDS[i]
        count = w.count("a")
        text_en = f'How many "a" are in the word \\"{w}\\"?'
        text_tl = f'Ilang "a" ang nasa salitang \\"{w}\\"?'
        wrong = [str(count + 1), str(count + 2), str(count + 3)]
        rows.append({"category": "composition", "subcategory": "character_counting",
                     "prompts": [{"text_en": text_en, "text_tl": text_tl,
                                  "mcq_options": {"correct": str(count), **{f"incorrect{k + 1}": x for k, x in enumerate(wrong)}},
                                  "choice1": str(count), "choice2": wrong[0], "choice3": wrong[1], "choice4": wrong[2]}],
                     "label": "A", "id": f"composition_mcq_{100 + i:05d}"})
        rows.append({"category": "composition", "subcategory": "character_counting",
                     "prompts": [{"text_en": text_en, "text_tl": text_tl}], "label": str(count),
                     "id": f"composition_gen_{100 + i:05d}"})
    return rows


# (root, affix as written in the sources, inflected word) per affix type
AFFIXES = {"prefix": [("inom", "um-", "uminom"), ("aral", "mag-", "mag-aral"), ("laro", "mag-", "maglaro")],
           "infix": [("kain", "-in-", "kinain"), ("takbo", "-um-", "tumakbo"), ("bili", "-in-", "binili")],
           "suffix": [("bukas", "-an", "buksan"), ("ganda", "-han", "gandahan"), ("inom", "-in", "inumin")]}


# inflected-affix extraction golds: the hyphens give the affix type
EXTRACTION = [("mapanlamang", "mapang-"), ("nakaupo", "naka-"), ("kinuha", "-in-"), ("sinulat", "-in-"),
              ("tawagan", "-an"), ("sabihin", "-in")]


def affix_rows() -> list[dict]:
    """affixation_{mcq,gen} rows (inflection MCQ/GEN, identification GEN with a bare gold) and
    morphological_extraction inflected-affix GEN rows whose gold marks the affix type with hyphens."""
    rows = []
    for kind, entries in AFFIXES.items():
        for j, (root, affix, word) in enumerate(entries):
            k = len(rows)
            wrong = [root, word + "an", "ka" + root]
            rows.append({"category": "affix_inflection", "subcategory": kind,
                         "prompts": [{"text_en": f'Which option has the {kind} "{affix}"?',
                                      "text_tl": f'Alin sa mga sumusunod ang may laping "{affix}"?',
                                      "mcq_options": {"correct": word, "incorrect1": wrong[0], "incorrect2": wrong[1],
                                                      "incorrect3": wrong[2]},
                                      "choice1": wrong[0], "choice2": word, "choice3": wrong[1], "choice4": wrong[2]}],
                         "label": "B", "id": f"affixation_mcq_{k:05d}"})
            rows.append({"category": "affix_inflection", "subcategory": kind,
                         "prompts": [{"text_en": f'Inflect the word "{root}" to use the {kind} "{affix}".',
                                      "text_tl": f'Lapian ng "{affix}" ang salitang "{root}".'}],
                         "label": word, "id": f"affixation_gen_{k:05d}"})
            rows.append({"category": "affix_identification", "subcategory": kind,
                         "prompts": [{"text_en": f'What is the affix used to inflect the word "{word}"?',
                                      "text_tl": f'Anong panlapi ang ginamit sa salitang "{word}"?'}],
                         "label": affix.strip("-"), "id": f"affixation_gen_{100 + k:05d}"})
    for k, (word, affix) in enumerate(EXTRACTION):
        rows.append({"category": "morphological_extraction", "subcategory": "inflected_affix_extraction",
                     "prompts": [{"text_en": f'What is the affix used to inflect the word \\"{word}\\"?',
                                  "text_tl": f'Anong panlapi ang ginamit sa salitang \\"{word}\\"?'}],
                     "label": affix, "id": f"morphological_extraction_gen_{k:05d}"})
    return rows


def hierarchical_rows(n: int = 24, seed: int = 4) -> list[dict]:
    """Hierarchical rows: gold is `answer` at a random position of `options` (some with a
    duplicated distractor); GEN rows without options; levels 0-5."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        w = WORDS[i % len(WORDS)]
        k = 1 + i % (len(w) - 1)
        answer = w[k]
        distractors = [c for c in dict.fromkeys("aeioubklmnst") if c != answer][:3]
        if i % 6 == 5:
            distractors[1] = distractors[0]  # a duplicated distractor, as in the public file
        options = distractors[:]
        options.insert(rng.randrange(4), answer)
        common = {"level": i % 6, "category": "recognition", "subcategory": "character_identification",
                  # the public file glues the quoted word to `word` in 75 prompts per format
                  "prompt_en": (f"What is letter {k + 1} of the word'{w}' ({i})?" if i % 4 == 0
                                else f"What is letter {k + 1} of '{w}' ({i})?"),
                  "prompt_tl": f"Ano ang ika-{k + 1} titik ng '{w}' ({i})?"}
        rows.append({**common, "options": options, "answer": answer, "word": w, "metadata": {"position": k + 1},
                     "id": f"hierarchical_mcq_{i:05d}"})
        rows.append({**common, "answer": answer, "word": w, "metadata": {"position": k + 1}, "id": f"hierarchical_gen_{i:05d}"})
    return rows


def cute_rows(per_task: int = 2) -> list[dict]:
    rows = []
    for t, task in enumerate(CUTE_TASKS):
        for j in range(per_task):
            w = WORDS[(t + j) % len(WORDS)]
            rows.append({"question": f'Example: " lamp ". Answer: " l a m p "\n\nQuestion ({task}): " {w} ".',
                         "answer": " ".join(w) if task == "spell" else f"{w}-{task}", "task_type": task,
                         "id": f"cute_gen_{len(rows):05d}"})
    return rows


def options_first_rows(benchmark: str, n: int = 40) -> list[dict]:
    """LangGame / multi-digit-addition rows: the gold always at options[0], as in the sources."""
    rows = []
    for i in range(n):
        if benchmark == "multi_digit_addition":
            a, b = 100 + 7 * i, 250 + 3 * i
            question, answer = f"{a}+{b}=", str(a + b)
            options = [answer, str(a + b + 1), str(a + b - 10), answer + "1"]
        else:
            words = [WORDS[(i + d) % len(WORDS)] for d in range(4)]
            question = f"The options are: [ {', '.join(words)}]. Which option is listed first ({i})? Answer:"
            answer = " " + words[0]
            options = [" " + w for w in words]
        rows.append({"question": question, "answer": answer, "options": options, "id": f"{benchmark}_mcq_{i:05d}"})
        rows.append({"question": question, "answer": answer, "id": f"{benchmark}_gen_{i:05d}"})
    return rows


SOURCE_ROWS = {"pacute": pacute_rows, "hierarchical": hierarchical_rows, "cute": cute_rows,
               "langgame": lambda: options_first_rows("langgame"),
               "multi_digit_addition": lambda: options_first_rows("multi_digit_addition")}


def fake_score(family, mode, step, benchmark, fmt):
    """A made-up score, distinct and recomputable per point (report tests check every cell)."""
    bump = {"base": 0.0, "vanilla": 0.05, "stochastok": 0.08, "patok": 0.12}[mode]
    fam = 0.1 if family == "gemma_x" else 0.0
    return round(0.3 + fam + bump + step / 1000 + (0.01 if fmt == "gen" else 0.0) + len(benchmark) / 1000, 6)


def write_fake_result(path, family, mode, step, benchmark, n=40, subtasks=("a", "b")):
    """A result JSON in the evaluate rule's format (summary of micro, macro and subtasks; no per-item
    scores), every metric of a format at the fake score."""
    summary = {}
    for fmt in ("mcq", "gen"):
        v = fake_score(family, mode, step, benchmark, fmt)
        se = math.sqrt(v * (1 - v) / (n - 1))
        if fmt == "mcq":
            metrics = {"acc": v, "acc_norm": v - 0.01, "acc_chance_corrected": (v - 0.25) / 0.75, "chance": 0.25}
        else:
            metrics = {"normalized_match": v, "exact_match": v - 0.02, "prefix_match": v, "contains_match": v + 0.02}
        cells = {k: {"value": x, "stderr": 0.0 if k == "chance" else se} for k, x in metrics.items()}
        summary[fmt] = {"primary_metric": "acc" if fmt == "mcq" else "normalized_match", "n": n,
                        "n_shot": {"added": 3, "in_prompt": 0, "total": 3}, "max_gen_toks": None,
                        "micro": cells, "macro": cells,
                        "subtasks": {s: {"n": n // len(subtasks), **cells} for s in subtasks}}
    path.write_text(json.dumps({"results": {}, "configs": {}, "versions": {}, "n-shot": {}, "n-samples": {},
                                "config": {}, "summary": summary,
                                "provenance": {"family": family, "mode": mode, "step": step, "benchmark": benchmark}}))
    return path
