"""The Filipino affix inventory, affix-token detection and affix cut points inside words.

Cut rules (heuristics from Tagalog morphology, applied to one word at a time, case-insensitively):
- prefix at a word start, the longest from the inventory that leaves a stem of >= MIN_STEM letters;
  a prefix ending in a consonant needs a consonant-initial stem, because Tagalog writes a hyphen
  between such a prefix and a vowel-initial stem (mag-aral), so `maganda` is ma + ganda, not mag + anda;
- a vowel-initial stem may start with `um`/`in` (umalis, inayos): that is the infix surfacing as a prefix;
- otherwise the infix `um`/`in` after the word's first consonant, followed by a vowel (k-um-ain);
- a leading CV reduplication of the stem (gaganda -> ga + ganda, naglalaro -> nag + la + laro);
- a suffix at a word end, the longest that leaves >= MIN_STEM letters after the previous cut.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from morphcpt.errors import MorphcptError

INVENTORY_PATH = Path(__file__).with_name("affixes_filipino.txt")
GROUPS = ("prefixes", "infixes", "suffixes")
MIN_STEM = 3
VOWELS = frozenset("aeiou")
WORD_RE = re.compile(r"[^\W\d_]+")


@dataclass(frozen=True, eq=False)  # identity hash: cheap as an lru_cache key
class AffixInventory:
    prefixes: tuple[str, ...]  # longest first
    infixes: tuple[str, ...]
    suffixes: tuple[str, ...]  # longest first

    def __post_init__(self):
        # set lookups by length: a word is checked against each possible prefix length once
        object.__setattr__(self, "prefix_set", frozenset(self.prefixes))
        object.__setattr__(self, "suffix_set", frozenset(self.suffixes))
        object.__setattr__(self, "longest_prefix", max(map(len, self.prefixes)))
        object.__setattr__(self, "longest_suffix", max(map(len, self.suffixes)))

    @property
    def all_forms(self) -> frozenset[str]:
        return frozenset(self.prefixes) | frozenset(self.infixes) | frozenset(self.suffixes)


def load_inventory(path: Path = INVENTORY_PATH) -> AffixInventory:
    groups: dict[str, list[str]] = {g: [] for g in GROUPS}
    current = None
    with open(path, encoding="utf-8") as handle:
        for line_no, raw in enumerate(handle, 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("[") and line.endswith("]"):
                current = line[1:-1]
                if current not in groups:
                    raise MorphcptError(f"{path}:{line_no}: unknown group [{current}]; use one of {', '.join(GROUPS)}")
                continue
            if current is None:
                raise MorphcptError(f"{path}:{line_no}: affix {line!r} before any [group] header")
            form = line.strip("-").lower()
            if not form or not WORD_RE.fullmatch(form):
                raise MorphcptError(f"{path}:{line_no}: {line!r} is not an affix (letters with hyphens)")
            groups[current].append(form)
    empty = [g for g in GROUPS if not groups[g]]
    if empty:
        raise MorphcptError(f"{path}: no affixes in group(s) {', '.join(empty)}")

    def longest_first(forms):
        return tuple(sorted(set(forms), key=lambda f: (-len(f), f)))

    return AffixInventory(longest_first(groups["prefixes"]), longest_first(groups["infixes"]), longest_first(groups["suffixes"]))


@lru_cache(maxsize=1)
def default_inventory() -> AffixInventory:
    return load_inventory()


def affix_token_ids(token_bytes: list[bytes], kinds: list[int], inventory: AffixInventory) -> set[int]:
    """Normal tokens whose text, without one leading space (`Ġ`/`▁` in the vocab) and in any case, is an affix."""
    forms = inventory.all_forms
    found = set()
    for idx, (raw, kind) in enumerate(zip(token_bytes, kinds)):
        if kind != 0 or not raw or len(raw) > 16:
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            continue
        if text[0] == " ":
            text = text[1:]
        if text.lower() in forms:
            found.add(idx)
    return found


def _is_consonant(ch: str) -> bool:
    return ch.isalpha() and ch not in VOWELS


@lru_cache(maxsize=1 << 17)  # words repeat (Zipf): most windows hit the cache
def word_cuts(word: str, inventory: AffixInventory, at_start: bool = True, at_end: bool = True) -> tuple[int, ...]:
    """Affix cut offsets (characters, 0 < cut < len(word)) inside one word, left to right.

    at_start/at_end say whether the word really starts/ends there (not cut off by a window edge);
    prefixes, infixes and reduplication need a real start, suffixes a real end.
    """
    lw = word.lower()
    if len(lw) != len(word):
        return ()  # a case mapping that changes length would shift offsets
    cuts: list[int] = []
    stem = 0  # where the remaining stem starts
    if at_start:
        if lw[0] in VOWELS:
            for infix in inventory.infixes:
                if lw.startswith(infix) and len(lw) - len(infix) >= MIN_STEM and lw[len(infix)] in VOWELS:
                    cuts.append(len(infix))  # vowel-initial stem: the infix surfaces as a prefix
                    stem = len(infix)
                    break
        if not cuts:
            prefixes = inventory.prefix_set
            for size in range(min(inventory.longest_prefix, len(lw) - MIN_STEM), 0, -1):
                prefix = lw[:size]
                if prefix in prefixes and (not _is_consonant(prefix[-1]) or _is_consonant(lw[size])):
                    cuts.append(size)
                    stem = size
                    break
        if not cuts and _is_consonant(lw[0]):
            for infix in inventory.infixes:
                end = 1 + len(infix)
                if lw.startswith(infix, 1) and len(lw) - end >= MIN_STEM - 1 and lw[end] in VOWELS:
                    cuts.extend((1, end))
                    stem = end
                    break
        # leading CV reduplication of the stem
        if (len(lw) - stem >= 4 + MIN_STEM - 2 and _is_consonant(lw[stem]) and lw[stem + 1] in VOWELS
                and lw[stem:stem + 2] == lw[stem + 2:stem + 4]):
            cuts.append(stem + 2)
            stem += 2
    if at_end:
        suffixes = inventory.suffix_set
        for size in range(min(inventory.longest_suffix, len(lw) - stem - MIN_STEM), 0, -1):
            if lw[-size:] in suffixes:
                cuts.append(len(lw) - size)
                break
    return tuple(cuts)


def text_cuts(text: str, inventory: AffixInventory, before: str = "", after: str = "") -> list[int]:
    """Affix cut offsets in a piece of text; before/after are the characters just outside it ("" = none)."""
    cuts: list[int] = []
    for match in WORD_RE.finditer(text):
        start, end = match.span()
        at_start = start > 0 or not (before and WORD_RE.match(before))
        at_end = end < len(text) or not (after and WORD_RE.match(after))
        cuts.extend(start + c for c in word_cuts(match.group(), inventory, at_start, at_end))
    return cuts
