"""Per-item metrics and prompt formatting, shared by the lm-eval tasks and the tests.

MCQ (log-likelihood of each choice as a continuation of the context):
- `acc`: 1 if the gold choice has the unique highest log-likelihood; when k choices tie for the
  highest and the gold is among them, 1/k (the expectation under a uniform tie-break). Ties are
  never broken towards index 0 (`np.argmax` would do exactly that).
- `acc_norm`: the same on log-likelihood per character of the choice (lm-eval's acc_norm).
- `acc_chance_corrected`: (acc - 1/n) / (1 - 1/n) per item, n = number of choices; 0 = chance.
- `chance`: 1/n, so tables can show the chance rate of the very items scored.
GEN (greedy generation up to a stop sequence):
- the answer is extracted from the first line: surrounding whitespace and one pair of
  surrounding quotes are removed (CUTE's few-shot answers are written `" word "`);
- `exact_match` (primary): extracted answer == gold, case-sensitive;
- `prefix_match`: the extracted answer starts with the gold; `contains_match`: the gold occurs
  anywhere in the first line. Secondary metrics: the same for the base model and every export.
"""

from __future__ import annotations

from typing import Any, Sequence

STOP_SEQUENCES = ["\n"]
TIE_ATOL = 1e-6  # log-likelihoods closer than this count as tied (batching noise on identical scores)
MCQ_METRICS = ("acc", "acc_norm", "acc_chance_corrected", "chance")
GEN_METRICS = ("exact_match", "prefix_match", "contains_match")
PRIMARY_METRIC = {"mcq": "acc", "gen": "exact_match"}
QUOTE_PAIRS = {'"': '"', "'": "'", "\u201c": "\u201d", "\u2018": "\u2019", "`": "`"}


def format_context(prompt: str) -> str:
    """The text the model continues: the prompt, then `Answer:` unless the prompt already ends in
    an answer slot (LangGame's `Answer:`, multi-digit addition's `=`)."""
    text = prompt.rstrip()
    if text.endswith("Answer:") or text.endswith("="):
        return text
    return text + "\nAnswer:"


def tie_aware_accuracy(scores: Sequence[float], gold: int) -> float:
    best = max(scores)
    winners = [i for i, s in enumerate(scores) if s >= best - TIE_ATOL]
    return 1.0 / len(winners) if gold in winners else 0.0


def mcq_metrics(loglikelihoods: Sequence[float], choices: Sequence[str], gold: int) -> dict[str, float]:
    if len(loglikelihoods) != len(choices) or not 0 <= gold < len(choices):
        raise ValueError(f"{len(loglikelihoods)} scores for {len(choices)} choices, gold {gold}")
    n = len(choices)
    acc = tie_aware_accuracy(loglikelihoods, gold)
    per_char = [ll / max(len(c), 1) for ll, c in zip(loglikelihoods, choices)]
    chance = 1.0 / n
    return {"acc": acc, "acc_norm": tie_aware_accuracy(per_char, gold),
            "acc_chance_corrected": (acc - chance) / (1.0 - chance), "chance": chance}


def first_line(generation: str) -> str:
    text = generation
    for stop in STOP_SEQUENCES:
        text = text.split(stop, 1)[0]
    return text.strip()


def extract_answer(generation: str) -> str:
    text = first_line(generation)
    if len(text) >= 2 and text[0] in QUOTE_PAIRS:
        close = text.find(QUOTE_PAIRS[text[0]], 1)
        if close > 0:
            text = text[1:close]
    return text.strip()


def gen_metrics(generation: str, answer: str) -> dict[str, float]:
    gold = answer.strip()
    extracted = extract_answer(generation)
    return {"exact_match": float(extracted == gold), "prefix_match": float(extracted.startswith(gold)),
            "contains_match": float(gold in first_line(generation))}


def item_metrics(item: dict[str, Any], response: Any) -> dict[str, float]:
    """Metrics of one item given lm-eval's response: a list of (loglikelihood, is_greedy) per
    choice for MCQ, the generated string for GEN."""
    if item["format"] == "mcq":
        return mcq_metrics([float(r[0]) for r in response], item["choices"], item["gold"])
    return gen_metrics(response if isinstance(response, str) else response[0], item["answer"])
