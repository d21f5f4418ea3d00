"""The project's own seeded generators for LangGame and multi-digit addition.

Both write rows in the public source schema (`{question, answer, options, id}` for MCQ, the
same without `options` for GEN; the GEN items ask the same questions as the MCQ items) with the
gold at `options[0]`, exactly as the public files do, so the normalizer's shuffle is exercised
on generated data too. Output depends only on (seed, count): every draw comes from one
`random.Random(seed)`; no set/dict iteration order enters a choice.
"""

from __future__ import annotations

import random
from typing import Any

DEFAULT_COUNT = 1000

# Common English words (LangGame asks about letters and lengths of everyday words).
WORDS = (
    "apple bread chair dance eagle field grape house image juice knife lemon money night ocean "
    "paper queen river stone table uncle voice water youth zebra album beach cloud dream earth "
    "flame glass heart island jelly kitten ladder mirror needle orange pencil rabbit silver "
    "tiger umbrella valley window yellow garden basket candle dinner engine forest guitar hammer "
    "insect jacket kettle lizard market number office parrot rocket summer ticket violin wallet "
    "bottle circle doctor finger planet school spring street sugar travel winter letter mother "
    "father sister brother friend animal flower family season cotton butter button coffee cookie "
    "desert castle bridge camera farmer hunter honey lamp milk nest owl pig rain salt tree wolf "
    "ant bee cat dog egg fox hat ink jam key leg map net pen cup sun bus car box toy "
    "method need very how too tail lead chick shadow thunder whisper blanket cabbage pumpkin"
).split()
LETTERS = "abcdefghiklmnoprstuwy"
OPTION_NAMES = ("options", "choices", "option words", "available options", "possible choices")


def _listing(options: list[str], rng: random.Random) -> str:
    shown = options[:]
    rng.shuffle(shown)
    return "[" + ",".join(" " + o for o in shown) + "]"


def _langgame_question(rng: random.Random) -> tuple[str, str, list[str], str] | None:
    """(task_type, question, options with gold first, answer) or None when the draw is ambiguous."""
    task = rng.choice(("contains", "starts_with", "ends_with", "longest", "shortest", "most_letter"))
    options = rng.sample(WORDS, 4)
    name = rng.choice(OPTION_NAMES)
    if task in ("longest", "shortest"):
        lengths = sorted(len(w) for w in options)
        extreme = lengths[-1] if task == "longest" else lengths[0]
        if lengths.count(extreme) != 1:
            return None
        gold = next(w for w in options if len(w) == extreme)
        ask = f"Which of the {name} is the {task}?"
    else:
        letter = rng.choice(LETTERS)
        if task == "most_letter":
            counts = [w.count(letter) for w in options]
            best = max(counts)
            if best == 0 or counts.count(best) != 1:
                return None
            gold = options[counts.index(best)]
            ask = f"Which of the {name} has the most letter '{letter}'s?"
        else:
            test = {"contains": lambda w: letter in w, "starts_with": lambda w: w.startswith(letter),
                    "ends_with": lambda w: w.endswith(letter)}[task]
            hits = [w for w in options if test(w)]
            if len(hits) != 1:
                return None
            gold = hits[0]
            verb = {"contains": "contains", "starts_with": "starts with", "ends_with": "ends with"}[task]
            ask = f"Which of the {name} {verb} '{letter}'?"
    listing = _listing(options, rng)
    if rng.random() < 0.5:
        question = f"The {name} are: {listing}. {ask} Answer:"
    else:
        question = f"{ask} The {name} are: {listing}. Answer:"
    ordered = [gold] + [w for w in options if w != gold]
    return task, question, [" " + w for w in ordered], " " + gold


def generate_langgame(seed: int, count: int = DEFAULT_COUNT) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    mcq, gen = [], []
    # Ambiguous draws are redrawn; the bound turns a broken word list into an error, not a hang.
    for _ in range(count * 50):
        if len(mcq) == count:
            break
        drawn = _langgame_question(rng)
        if drawn is None:
            continue
        task, question, options, answer = drawn
        i = len(mcq)
        mcq.append({"question": question, "answer": answer, "options": options,
                    "id": f"langgame_mcq_{i:05d}", "task_type": task})
        gen.append({"question": question, "answer": answer, "id": f"langgame_gen_{i:05d}", "task_type": task})
    else:
        raise RuntimeError("langgame generator: too many ambiguous draws")
    return mcq + gen


def _addition_distractors(a: int, b: int, rng: random.Random) -> list[str]:
    s = a + b
    text = str(s)
    candidates = [s + 1, s - 1, s + 10, s - 10, s + 100, a * 10 + b if b < 10 else a + b * 10]
    strings = [str(c) for c in candidates if c >= 0]
    if len(text) > 1:
        strings.append(text[:-1])                                   # dropped last digit
        strings.append(text[1:])                                    # dropped first digit
        j = rng.randrange(len(text) - 1)
        strings.append(text[:j] + text[j + 1] + text[j] + text[j + 2:])  # swapped neighbours
    strings.append(text + str(rng.randrange(10)))                   # appended digit
    unique = [x for x in dict.fromkeys(strings) if x and x != text]
    return rng.sample(unique, 3)


def generate_multi_digit_addition(seed: int, count: int = DEFAULT_COUNT) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    mcq, gen = [], []
    for i in range(count):
        digits_a, digits_b = rng.choices((1, 2, 3), weights=(1, 2, 17), k=2)
        a = rng.randrange(10 ** (digits_a - 1) if digits_a > 1 else 0, 10 ** digits_a)
        b = rng.randrange(10 ** (digits_b - 1) if digits_b > 1 else 0, 10 ** digits_b)
        question, answer = f"{a}+{b}=", str(a + b)
        options = [answer] + _addition_distractors(a, b, rng)
        mcq.append({"question": question, "answer": answer, "options": options,
                    "id": f"multi_digit_addition_mcq_{i:05d}"})
        gen.append({"question": question, "answer": answer, "id": f"multi_digit_addition_gen_{i:05d}"})
    return mcq + gen


GENERATORS = {"langgame": generate_langgame, "multi_digit_addition": generate_multi_digit_addition}
