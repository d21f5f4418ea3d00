"""Per-item metrics, prompt formatting and answer normalisers, shared by the lm-eval tasks and tests.

Prompt format: the item's prompt, then `Answer:` (unless the prompt already ends in an answer slot,
LangGame's `Answer:` or addition's `=`), then ` ` and the answer, ended by a blank line
(`ANSWER_TERMINATOR`, `\n\n`). Few-shot examples are written the same way, one after the other, so
the scored option ends with the very tokens every example's answer ends with. Generation stops at
the first newline.

MCQ (log-likelihood of each option as a continuation of the context):
- every continuation is ` <option>\\n\\n`: the terminator is scored as part of the option. Without it,
  an option whose tokens are a prefix of another's (`12` vs `123`; with one token per digit, very
  common) always beats the longer one: the longer one's log-likelihood is the shorter's plus
  that of its extra tokens, which is negative. So such a gold always wins, or never. With the
  terminator, the shorter option must also predict the end of the answer where the longer one
  continues, so the two sequences differ at that token and neither can win or lose by length.
- `acc`: 1 if the gold option has the unique highest log-likelihood; when k options tie for the
  highest and the gold is among them, 1/k (the expectation under a uniform tie-break). Ties are
  never broken towards index 0 (`np.argmax` would do exactly that).
- `acc_norm`: the same on log-likelihood per character of the option (lm-eval's acc_norm).
- `acc_chance_corrected`: (acc - 1/n) / (1 - 1/n) per item, n = number of options; 0 = chance.
- `chance`: 1/n, so tables can show the chance rate of the very items scored.
GEN (greedy generation up to the terminator):
- the answer is the first line with surrounding whitespace and one pair of surrounding quotes
  removed (CUTE's in-prompt examples write answers as `" word "`);
- `normalized_match` (primary): answer == gold after the item's normalisers (`NORMALISERS`,
  chosen by `answer_normalisers`), applied to both sides;
- `exact_match` (strict, secondary): answer == gold, case- and character-exact;
- `prefix_match`: the answer starts with the gold; `contains_match`: the gold occurs anywhere in the
  first line.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any, Callable, Sequence

# Every answer, in a few-shot example and as a scored MCQ option, ends with the same separator: a
# blank line. Tokenizers fuse `\n\n` into one token (Llama-3 `ĊĊ`, and `-\n\n` after a hyphen),
# so the option is scored with exactly the tokens the same answer has inside an example.
ANSWER_TERMINATOR = "\n\n"
SHOT_SEPARATOR = ANSWER_TERMINATOR
STOP_SEQUENCES = ["\n"]   # generation stops at the first newline (the start of the separator)
TARGET_DELIMITER = " "
TIE_ATOL = 1e-6  # log-likelihoods closer than this count as tied (batching noise on identical scores)
MCQ_METRICS = ("acc", "acc_norm", "acc_chance_corrected", "chance")
GEN_METRICS = ("normalized_match", "exact_match", "prefix_match", "contains_match")
PRIMARY_METRIC = {"mcq": "acc", "gen": "normalized_match"}
QUOTE_PAIRS = {'"': '"', "'": "'", "\u201c": "\u201d", "\u2018": "\u2019", "`": "`"}
CURLY_QUOTES = str.maketrans({"\u201c": '"', "\u201d": '"', "\u2018": "'", "\u2019": "'"})
INTEGER = re.compile(r"[+-]?\d+")
YES_NO = ("yes", "no")
# CUTE's word-level tasks: the answer is a sentence; its golds lower-case the word after a deleted
# sentence-initial word ("And they ..." -> "they ..."), so case is not what these tasks test.
CUTE_WORD_TASKS = ("ins_word", "del_word", "sub_word", "swap_word")

# name -> (what it does, function applied to both the answer and the gold). Hyphens are never
# removed: their position is the affix type (`-in-` infix, `-in` suffix, `in-` prefix).
NORMALISERS: dict[str, tuple[str, Callable[[str], str]]] = {
    "whitespace": ("runs of whitespace become one space (always applied)",
                   lambda s: " ".join(s.split())),
    "final_period": ("one sentence-final period is ignored, for words and numbers alike (`887.` = `887`, "
                     "`kain.` = `kain`; always applied)",
                     lambda s: s[:-1].rstrip() if s.endswith(".") and not s.endswith("..") else s),
    "integer": ("gold is an integer: a leading `+` is ignored", lambda s: s.lstrip("+")),
    "yes_no": ("CUTE's Yes/No golds: case-insensitive", lambda s: s.casefold()),
    "sentence": ("CUTE word tasks: case-insensitive, curly quotes as straight ones, surrounding quotes "
                 "removed",
                 lambda s: s.translate(CURLY_QUOTES).strip().strip("\"'").strip().casefold()),
}


def format_context(prompt: str) -> str:
    """The text the model continues: the prompt, then `Answer:` unless the prompt already ends in
    an answer slot (LangGame's `Answer:`, multi-digit addition's `=`)."""
    text = prompt.rstrip()
    if text.endswith("Answer:") or text.endswith("="):
        return text
    return text + "\nAnswer:"


def mcq_continuation(choice: str) -> str:
    """An option as lm-eval scores it (after the target delimiter): the option and the terminator."""
    return choice + ANSWER_TERMINATOR


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


def answer_normalisers(item: dict[str, Any]) -> tuple[str, ...]:
    """The normalisers of a GEN item, from its benchmark, subtask and gold. Case, diacritics and
    hyphens are kept everywhere else: PACUTE's uppercasing/lowercasing/diacritic tasks, stress marks,
    CUTE's character tasks, spelling and affix types are about exactly those."""
    gold = unicodedata.normalize("NFC", item["answer"].strip())
    names = ["whitespace", "final_period"]
    if INTEGER.fullmatch(gold):
        names.append("integer")
    elif item["benchmark"] == "cute" and gold.casefold() in YES_NO:  # LangGame's `no` is a word option
        names.append("yes_no")
    elif item["benchmark"] == "cute" and item.get("category") in CUTE_WORD_TASKS:
        names.append("sentence")
    return tuple(names)


def normalise(text: str, names: Sequence[str]) -> str:
    text = unicodedata.normalize("NFC", text)
    for name in names:
        text = NORMALISERS[name][1](text)
    return text


def gen_metrics(generation: str, answer: str, normalisers: Sequence[str] = ("whitespace",)) -> dict[str, float]:
    gold = answer.strip()
    extracted = extract_answer(generation)
    return {"normalized_match": float(normalise(extracted, normalisers) == normalise(gold, normalisers)),
            "exact_match": float(extracted == gold), "prefix_match": float(extracted.startswith(gold)),
            "contains_match": float(gold in first_line(generation))}


def item_metrics(item: dict[str, Any], response: Any) -> dict[str, float]:
    """Metrics of one item given lm-eval's response: a list of (loglikelihood, is_greedy) per
    choice for MCQ, the generated string for GEN."""
    if item["format"] == "mcq":
        return mcq_metrics([float(r[0]) for r in response], item["choices"], item["gold"])
    return gen_metrics(response if isinstance(response, str) else response[0], item["answer"],
                       answer_normalisers(item))


# -- token-prefix pairs -------------------------------------------------------------------------
def continuation_tokens(encode: Callable[[str], list[int]], context: str, continuation: str) -> list[int]:
    """The continuation's token ids exactly as lm-eval's HFLM scores them (`_encode_pair`): trailing
    spaces of the context move to the continuation, the pair is encoded whole and the context's
    tokens are cut off the front."""
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces:
        continuation = context[-n_spaces:] + continuation
        context = context[:-n_spaces]
    whole = encode(context + continuation)
    return whole[len(encode(context)):]


def has_prefix_pair(token_lists: Sequence[Sequence[int]]) -> bool:
    """Whether one option's tokens are a prefix of (or equal to) another option's."""
    seqs = [tuple(t) for t in token_lists]
    return any(i != j and len(a) <= len(b) and b[: len(a)] == a
               for i, a in enumerate(seqs) for j, b in enumerate(seqs))


def count_prefix_pairs(items: Sequence[dict[str, Any]], encode: Callable[[str], list[int]]) -> dict[str, Any]:
    """MCQ items in which one option's tokens are a prefix of another's, as the options would be
    scored without the terminator and as they are scored with it (must be 0)."""
    bare, terminated = [], []
    for it in items:
        if it["format"] != "mcq":
            continue
        context = it["context"] if "context" in it else format_context(it["prompt"])  # with its examples
        if has_prefix_pair([continuation_tokens(encode, context, TARGET_DELIMITER + c) for c in it["choices"]]):
            bare.append(it["id"])
        if has_prefix_pair([continuation_tokens(encode, context, TARGET_DELIMITER + mcq_continuation(c))
                            for c in it["choices"]]):
            terminated.append(it["id"])
    return {"items_without_terminator": len(bare), "items_with_terminator": len(terminated),
            "ids_with_terminator": terminated}
