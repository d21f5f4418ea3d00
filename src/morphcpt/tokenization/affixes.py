"""The Filipino affix inventory and affix-token detection (the cutter that uses them: cutter.py)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from morphcpt.errors import MorphcptError

INVENTORY_PATH = Path(__file__).with_name("affixes_filipino.txt")
GROUPS = ("prefixes", "infixes", "suffixes")
LETTERS_RE = re.compile(r"[^\W\d_]+")


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
            if not form or not LETTERS_RE.fullmatch(form):
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
