"""The affix cutter: morpheme cut points inside one Tagalog word, checked against a root lexicon.

A word (letters, with hyphens between parts) is cut at its hyphens; each part is analysed alone.
For a part, every analysis the rules allow is generated (`analyses`), each with the root forms it
implies once the spelling changes of affixation are undone; an analysis is accepted only if one of
its roots is attested in the root lexicon, and the best-attested accepted analysis wins. The rules:
- prefixes from the inventory (compound prefixes such as `nakipag`, `magpa`, `pina`, `ikina` are one
  piece); a prefix ending in a consonant needs a consonant after it (Tagalog writes `mag-aral`:
  within one part, `maganda` is ma + ganda); a second prefix outside the inventory may follow some
  (STACKED_PREFIXES: pinaka|ma|taas, na|i|bigay); a hyphenated word's part that is a prefix of the
  inventory is not cut further (makapag|-|aral);
- nasal substitution: after a vowel-final prefix, a root-initial m/n/ng may stand for p/b, t/s/d,
  k or nothing (ma|nahi <- tahi, pa|nguha <- kuha, na|mayat <- payat); `r` may stand for `d`
  (ma|rapat <- dapat);
- the infixes `um`/`in` after the first consonant (k|um|ain), after a consonant-final prefix or i-
  (mag|s|um|ikap, i|t|in|aas), or as a prefix before a vowel (um|inom, in|ayos); `ni` before l/y/r
  is the metathesised -in- (ni|lipad, ni|yakap, i|ni|labas);
- reduplication: CV (ma|bu|buti, pu|punta), CCV (te|trese), a doubled vowel (a|alis, ka|a|alis),
  the vowel after an infix (k|in|u|kuha, t|um|a|taob) and the last syllable of a prefix (magka|ka|iba);
  nasal substitution also after a CV reduplicant (na|ni|nira|han <- tira);
- one suffix `-an/-in/-han/-hin/-nan/-nin`; the stem before it may be syncopated (takp|an <- takip,
  tingn|an <- tingin), end in u/i for o/e (pusu|an <- puso) or r for d (tawar|an <- tawad), or have
  lost a final vowel before -han/-hin/-nan/-nin (bil|hin <- bili; not lab|an <- laba).
Root candidates must look like Tagalog roots (>= 3 letters, two vowels if 3, a valid onset: not
nta, ngkat; >= 4 letters after i- and after a CV reduplicant) and not be affixes themselves.
The lexicon (root_lexicon.txt, built by `build_lexicon` in scripts/build_patok_data.py from
FrequencyWords' Tagalog subtitle counts and UniMorph's Tagalog verb paradigms: lexicon_sources.py;
no evaluation benchmark) gives each candidate root the number of word forms of the word list that
the same rules derive from it and their total count (`mass`), and each word its own count. A root is attested for a word when
at least two forms carry it, more forms than carry the word itself as a root (tingin is a root, not
ting + in), and the forms other than the word occur at least count(word) / RATIO_LIMIT times (a very
frequent word whose "root" is rare, isang -> i + sang, is a word of its own). Its score is its own
count plus its forms (times a weight that demotes -nan/-nin readings, and ANALYSABLE_ROOT_WEIGHT
when the root is one the cutter cuts itself: pinaka|ma|ganda, not pinaka|maganda; kina|usap, not
k|in|ausap); among the analyses scoring at least DEEPER_FRACTION of the best, the one with the most
cuts wins. Weak analyses, a lone suffix (lab|an) or a lone prefix of <= 2 letters ending in a vowel
(ka|wani), count only if a root occurs as a word of its own. When no analysis has an attested root
(an unknown root), fallback_cuts accepts strong affix evidence with a root of Tagalog syllables
(nag|ki|kipkip, naka|sukbit; see there).
Never cut: closed-class words (closed_class_words.txt) and a word + linker -ng/-g whose base is
closed-class or frequent (kanilang, ibang: the base is analysed instead).
Changing these rules changes the roots they derive: rebuild root_lexicon.txt (and the dev gold set)
with scripts/build_patok_data.py.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from morphcpt.errors import MorphcptError
from morphcpt.tokenization.affixes import AffixInventory, default_inventory

LEXICON_PATH = Path(__file__).with_name("root_lexicon.txt")
CLOSED_CLASS_PATH = Path(__file__).with_name("closed_class_words.txt")
LEXICON_VERSION = 1
VOWELS = frozenset("aeiou")
# a word: letters, hyphens only between letters (mag-aral, araw-araw)
WORD_RE = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)*")
# the words WORD_RE finds that can have cuts: hyphenated, or of >= MIN_STEM + 1 letters (a shorter
# part has no analysis); skipping ang, ng, sa, mga saves most of Patok's per-word work. A match
# starts only where a letter run starts and never backtracks (possessive runs): the matches of
# `[^\W\d_]+(?:-[^\W\d_]+)+|[^\W\d_]{4,}`, found in fewer steps (Patok's speed, docs/design.md §4)
CUTTABLE_WORD_RE = re.compile(r"(?<![^\W\d_])(?:[^\W\d_]++(?:-[^\W\d_]++)+|[^\W\d_]{4,})")
SUFFIXES = ("han", "hin", "nan", "nin", "an", "in")
MIN_ROOT = 3  # letters in a root candidate: two-letter "roots" (ba|ba, sa|an) are nearly always wrong
MIN_STEM = 3  # letters left in the part after prefixes/infixes (before a suffix)
MIN_ROOT_AFTER_I = 4  # i- takes roots of >= 4 letters (i|bigay, i|sulat; not i|tim, i|sip, i|log)
MIN_FALLBACK_ROOT = 4  # letters in an unknown root accepted by fallback_cuts
MIN_CV_REDUP_ROOT = 4  # a CV reduplicant needs a root of >= 4 letters after it (pu|punta; not ba|bae, ti|tig|an)
DEEPER_FRACTION = 0.5  # a deeper analysis wins if its root is this well attested next to the best one
RATIO_LIMIT = 20  # a root must carry >= count(word)/RATIO_LIMIT occurrences in other forms
MIN_WORD_COUNT = 1  # the lexicon keeps own counts of words at least this frequent
CACHE_LIMIT = 1 << 18  # words kept in a cutter's cache
NASAL_UNDO = {"m": ("p", "b"), "n": ("t", "s", "d"), "ng": ("k", "")}
# consonant pairs a Tagalog root may start with (native ng, loans: braso, trabaho, tsismis, swerte, ...)
ONSET_CLUSTERS = frozenset("bl br dr dy gr gw kl kr kw ky pl pr py sw sy tr ts tw".split())
N_SUFFIX_WEIGHT = 0.05  # an -nan/-nin reading counts this much against an -an/-in one (laban|an, not laba|nan)
ANALYSABLE_ROOT_WEIGHT = 0.1  # an analysis whose root the cutter cuts itself counts this much
METATHESIS_ONSETS = "lyr"  # -in- is written ni- before these (nilipad, niyakap); before w it stays an infix (winalis)
PREFIX, INFIX, REDUP, SUFFIX = (frozenset({m}) for m in ("prefix", "infix", "redup", "suffix"))
# a second prefix outside the inventory after a first one (pinaka|ma|taas, na|i|bigay)
STACKED_PREFIXES = {"pinaka": ("ma",), "napaka": ("ma",), "na": ("i",), "ma": ("i",)}
LINKERS = ("ng", "g")  # the linker: isa|ng, ilan|g (not a morpheme cut here; the word before it is analysed)


def _consonant(ch: str) -> bool:
    return ch.isalpha() and ch not in VOWELS


def _vowel(ch: str) -> bool:
    return ch in VOWELS


@dataclass(frozen=True)
class Analysis:
    cuts: tuple[int, ...]  # character offsets inside the part, increasing
    roots: tuple[str, ...]  # root spellings this analysis implies (any one attested is enough)
    weight: float = 1.0  # multiplies the attestation score (N_SUFFIX_WEIGHT for -nan/-nin)
    markers: frozenset = frozenset()  # which of prefix, infix, redup, suffix this analysis has


def plausible_root(root: str, inventory: AffixInventory) -> bool:
    """A root candidate: >= MIN_ROOT letters, not itself an affix, a Tagalog onset (ngalan, trabaho; not nta)."""
    if len(root) < MIN_ROOT or root in inventory.prefix_set or root in inventory.suffix_set:
        return False
    if len(root) == MIN_ROOT and sum(ch in VOWELS for ch in root) < 2:
        return False  # three-letter roots have two vowels (aga, ulo, tao); not nay, god, tig
    if _consonant(root[0]) and _consonant(root[1]):
        return (root[:2] == "ng" and _vowel(root[2])) or root[:2] in ONSET_CLUSTERS
    return True


def _suffix_roots(stem: str, suffix: str) -> list[str]:
    """Roots a stem before a suffix may stand for (undoing syncope and sound changes)."""
    roots = [stem]
    last = stem[-1]
    if last == "u":
        roots.append(stem[:-1] + "o")
    elif last == "i":
        roots.append(stem[:-1] + "e")
    elif last == "r":
        roots.append(stem[:-1] + "d")
    last_u = stem.rfind("u")
    if last_u >= 0 and not any(ch in VOWELS for ch in stem[last_u + 1:]):
        roots.append(stem[:last_u] + "o" + stem[last_u + 1:])  # putuk|an <- putok, tulung|an <- tulong
    if _consonant(last):
        if len(stem) >= 3 and _consonant(stem[-2]):
            roots.extend(stem[:-1] + v + last for v in "aiu")  # takp -> takip, tingn -> tingin
        if len(stem) >= 3 and suffix[0] in "hn":
            roots.extend(stem + v for v in "aiou")  # sar|han -> sara, bil|hin -> bili (not lab|an -> laba)
    return roots


def _onset_roots(core: str, after_vowel_prefix: bool) -> list[str]:
    """Roots a core may stand for at its start (nasal substitution, d -> r after a vowel)."""
    roots = [core]
    if after_vowel_prefix:
        for nasal in ("ng", "m", "n"):
            if core.startswith(nasal) and len(core) > len(nasal) and _vowel(core[len(nasal)]):
                roots.extend(sub + core[len(nasal):] for sub in NASAL_UNDO[nasal])
                break
        if core[0] == "r":
            roots.append("d" + core[1:])
    return roots


def _prefix_options(part: str, inventory: AffixInventory) -> list[tuple[tuple[int, ...], int, str, bool, frozenset]]:
    """(cuts, stem start, infix consonant or "", stem follows a vowel-final prefix, markers) for the part's start."""
    options: list[tuple[tuple[int, ...], int, str, bool, frozenset]] = [((), 0, "", False, frozenset())]
    n = len(part)
    prefixes: list[int] = []
    for size in range(1, min(inventory.longest_prefix, n - MIN_STEM) + 1):
        prefix = part[:size]
        if prefix in inventory.prefix_set and (not _consonant(prefix[-1]) or _consonant(part[size])):
            prefixes.append(size)
            options.append(((size,), size, "", not _consonant(prefix[-1]), PREFIX))
    # stacked prefixes outside the inventory: pinaka|ma|taas, napaka|ma|ganda, na|i|bigay, ma|i|balik
    for size in list(prefixes):
        for second in STACKED_PREFIXES.get(part[:size], ()):
            end = size + len(second)
            if part.startswith(second, size) and n - end >= MIN_STEM:
                options.append(((size, end), end, "", True, PREFIX))
    # the infix as a prefix before a vowel-initial stem (umalis, inayos)
    for infix in inventory.infixes:
        if part.startswith(infix) and n - 2 >= MIN_STEM and _vowel(part[2]):
            options.append(((2,), 2, "", False, INFIX))
    # the infix after the first consonant (kumain), or after a consonant-final prefix (magsumikap)
    for start in [0, *(s for s in prefixes if _consonant(part[s - 1]) or part[:s] == "i")]:  # i|t|in|aas
        if start + 4 <= n and _consonant(part[start]) and part[start + 1:start + 3] in inventory.infixes and _vowel(part[start + 3]):
            cuts = ((start,) if start else ()) + (start + 1, start + 3)
            options.append((cuts, start + 3, part[start], False, PREFIX | INFIX if start else INFIX))
    # metathesised -in- before l, y, r, w (nilipad, niyakap)
    if part.startswith("ni") and n >= 2 + MIN_STEM and part[2] in METATHESIS_ONSETS and _vowel(part[3]):
        options.append(((2,), 2, "", False, INFIX))
    if part.startswith("ini") and n >= 3 + MIN_STEM and part[3] in METATHESIS_ONSETS and _vowel(part[4]):
        options.append(((1, 3), 3, "", False, PREFIX | INFIX))  # i|ni|labas
    return options


def analyses(part: str, inventory: AffixInventory) -> list[Analysis]:
    """Every analysis the rules allow for one lower-case, letters-only part (not the bare part)."""
    out: list[Analysis] = []
    n = len(part)
    if n < MIN_STEM + 1:
        return out
    for pre_cuts, pos, infix_consonant, after_vowel, pre_markers in _prefix_options(part, inventory):
        redups: list[tuple[tuple[int, ...], int]] = [((), pos)]
        cv_redup_at = -1  # where a CV/CCV reduplicant's root starts (it needs MIN_CV_REDUP_ROOT letters)
        s = part[pos:]
        if len(s) >= 4:
            if _consonant(s[0]) and _vowel(s[1]) and s[2:4] == s[:2]:
                redups.append(((pos + 2,), pos + 2))  # CV: bu|buti
                cv_redup_at = pos + 2
            elif _consonant(s[0]) and _vowel(s[1]) and s[2] == s[0] and len(s) >= 5 and _consonant(s[3]) and s[4] == s[1]:
                redups.append(((pos + 2,), pos + 2))  # CCV: te|trese
                cv_redup_at = pos + 2
            if _vowel(s[0]) and s[1] == s[0]:
                redups.append(((pos + 1,), pos + 1))  # V: a|alis
            if infix_consonant and _vowel(s[0]) and s[1:3] == infix_consonant + s[0]:
                redups.append(((pos + 1,), pos + 1))  # after an infix: k|in|u|kuha
            if pre_cuts and not infix_consonant and pos >= 2 and _consonant(part[pos - 2]) and _vowel(part[pos - 1]) and s[:2] == part[pos - 2:pos]:
                redups.append(((pos + 2,), pos + 2))  # the prefix's last syllable: magka|ka|iba
        for red_cuts, core_start in redups:
            head = pre_cuts + red_cuts
            # the infix consonant belongs to the root unless a reduplicant repeats it (k|in|u|kuha)
            lead = infix_consonant if infix_consonant and not red_cuts else ""
            ends = [(n, "")]
            for suffix in SUFFIXES:
                if part.endswith(suffix) and n - len(suffix) - core_start >= MIN_ROOT:
                    ends.append((n - len(suffix), suffix))
            for end, suffix in ends:
                if not head and not suffix:
                    continue  # the bare part: not an analysis
                core = lead + part[core_start:end]
                if len(core) < MIN_ROOT:
                    continue
                nasal_ok = after_vowel and (not red_cuts or core_start == cv_redup_at)  # na|ni|nira <- sira
                bases = _onset_roots(core, nasal_ok) if pre_cuts and not infix_consonant else [core]
                roots = [r for b in bases for r in (_suffix_roots(b, suffix) if suffix else [b])]
                cuts = head + ((end,) if suffix else ())
                roots = [r for r in dict.fromkeys(roots) if plausible_root(r, inventory)]
                if pre_cuts == (1,) and part[0] == "i":  # i|bigay, not i|long, i|tlog
                    roots = [r for r in roots if len(r) >= MIN_ROOT_AFTER_I and sum(ch in VOWELS for ch in r) >= 2]
                if core_start == cv_redup_at:
                    roots = [r for r in roots if len(r) >= MIN_CV_REDUP_ROOT]
                if roots:
                    weight = N_SUFFIX_WEIGHT if suffix in ("nan", "nin") else 1.0
                    markers = pre_markers | (REDUP if red_cuts else frozenset()) | (SUFFIX if suffix else frozenset())
                    out.append(Analysis(cuts, tuple(roots), weight, markers))
    return out


class RootLexicon:
    """Root attestation: root -> (forms, mass) and frequent word -> count (see the module doc)."""

    def __init__(self, roots: dict[str, tuple[int, int]], counts: dict[str, int], source: str = "<memory>"):
        self.roots, self.counts, self.source = roots, counts, source

    @classmethod
    def load(cls, path: Path = LEXICON_PATH) -> "RootLexicon":
        roots: dict[str, tuple[int, int]] = {}
        counts: dict[str, int] = {}
        try:
            lines = Path(path).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise MorphcptError(f"{path}: cannot read the root lexicon ({exc})") from exc
        for line_no, line in enumerate(lines, 1):
            if not line or line.startswith("#"):
                continue
            fields = line.split("\t")
            try:
                form, count, forms, mass = fields[0], int(fields[1]), int(fields[2]), int(fields[3])
            except (IndexError, ValueError):
                raise MorphcptError(f"{path}:{line_no}: expected 'form<TAB>count<TAB>forms<TAB>mass' (integers)") from None
            if count:
                counts[form] = count
            if forms:
                roots[form] = (forms, mass)
        if not roots:
            raise MorphcptError(f"{path}: no roots; rebuild it with build_lexicon")
        return cls(roots, counts, source=str(path))

    def attestation(self, root: str, word: str) -> int:
        """How well root is attested as a root of word: 0 when not (fewer than two forms, or its other
        forms too rare next to word); else its own count as a word plus its number of forms."""
        forms, mass = self.roots.get(root, (0, 0))
        if forms < 2:
            return 0
        own = self.counts.get(word, 0)
        if mass - own < max(1, own / RATIO_LIMIT):
            return 0
        if forms <= self.roots.get(word, (0, 0))[0]:
            return 0  # the word itself is the base of as many forms: it is a root (tingin, not ting|in)
        return self.counts.get(root, 0) + forms


def load_closed_class(path: Path = CLOSED_CLASS_PATH) -> frozenset[str]:
    """The words never cut (closed_class_words.txt: one lower-case word per line, # comments)."""
    words = set()
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise MorphcptError(f"{path}: cannot read the closed-class word list ({exc})") from exc
    for line_no, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not re.fullmatch(r"[a-zñ]+", line):
            raise MorphcptError(f"{path}:{line_no}: {line!r} is not one lower-case word")
        words.add(line)
    return frozenset(words)


@lru_cache(maxsize=1)
def default_lexicon() -> RootLexicon:
    return RootLexicon.load()


class Cutter:
    """Morpheme cut points of words: rules (analyses) + root lexicon, cached per word."""

    def __init__(self, inventory: AffixInventory | None = None, lexicon: RootLexicon | None = None,
                 closed_class: frozenset[str] | None = None):
        self.inventory = inventory or default_inventory()
        self.lexicon = lexicon if lexicon is not None else default_lexicon()
        self.closed_class = closed_class if closed_class is not None else load_closed_class()
        self.cache: dict[str, tuple[int, ...]] = {}  # word -> cuts (words repeat: Zipf); read it for speed

    def __getstate__(self):  # processors travel to worker processes: without the cache
        return {**self.__dict__, "cache": {}}

    def word_cuts(self, word: str) -> tuple[int, ...]:
        """Cut offsets (characters, 0 < cut < len(word)) in one word; a hyphen is cut on both sides."""
        cuts = self.cache.get(word)
        if cuts is None:
            if len(self.cache) >= CACHE_LIMIT:
                self.cache.clear()
            cuts = self.cache[word] = self._word_cuts(word)
        return cuts

    def part_cuts(self, part: str) -> tuple[int, ...]:
        lower = part.lower()
        if len(lower) != len(part):
            return ()  # a case mapping that changes length would shift offsets
        if lower in self.closed_class:
            return ()
        for linker in LINKERS:  # isang -> isa + ng: analyse the word before the linker
            base = lower[:-len(linker)]
            if lower.endswith(linker) and len(base) >= 2 and (base[-1] in VOWELS) == (linker == "ng") and (
                    base in self.closed_class
                    or self.lexicon.counts.get(base, 0) >= self.lexicon.counts.get(lower, 0) / RATIO_LIMIT > 0):
                return () if base in self.closed_class else self._best(base, lower)
        return self._best(lower, lower)

    def _best(self, part: str, word: str) -> tuple[int, ...]:
        scored = []
        found = analyses(part, self.inventory)
        for analysis in found:
            if self._needs_word_root(part, analysis) and not any(
                    self.lexicon.counts.get(r, 0) >= max(1, self.lexicon.counts.get(word, 0) / RATIO_LIMIT) for r in analysis.roots):
                continue
            score, root = max((self.lexicon.attestation(r, word), r) for r in analysis.roots)
            if score and SUFFIX.isdisjoint(analysis.markers) and self.word_cuts(root):
                score *= ANALYSABLE_ROOT_WEIGHT  # pinaka|ma|ganda, kina|usap: not pinaka|maganda, k|in|ausap
            score *= analysis.weight
            if score:
                scored.append((score, analysis.cuts))
        if not scored:
            return fallback_cuts(part, found)
        # the analysis with the most cuts among those nearly as well attested as the best one (a
        # derived stem such as pagtulog is often better attested than its root tulog), then the best
        top = max(score for score, _ in scored)
        return max((len(cuts), score, cuts) for score, cuts in scored if score >= DEEPER_FRACTION * top)[2]

    @staticmethod
    def _needs_word_root(part: str, analysis: Analysis) -> bool:
        """A lone suffix (lab|an, ting|in) or a lone short vowel-final prefix (ka|wani, i|long) is
        weak evidence: such an analysis needs a root that occurs as a word of its own, at least
        count(word) / RATIO_LIMIT times (hangin is not hang|in for one `hang`)."""
        if analysis.markers == SUFFIX:
            return True
        return analysis.markers == PREFIX and len(analysis.cuts) == 1 and analysis.cuts[0] <= 2 and _vowel(part[analysis.cuts[0] - 1])

    def _word_cuts(self, word: str) -> tuple[int, ...]:
        def part_cuts(index: int, part: str, parts: int) -> tuple[int, ...]:
            if index < parts - 1 and part.lower() in self.inventory.prefix_set:
                return ()  # makapag|-|aral
            return self.part_cuts(part)

        return hyphenated_cuts(word, part_cuts)

    def segment(self, word: str) -> list[str]:
        bounds = [0, *self.word_cuts(word), len(word)]
        return [word[a:b] for a, b in zip(bounds, bounds[1:])]


def hyphenated_cuts(word: str, part_cuts) -> tuple[int, ...] | None:
    """A word's cuts from its hyphen-separated parts' (a hyphen is cut on both sides):
    part_cuts(index, part, number of parts) gives a part's own cuts, or None for none at all."""
    cuts: list[int] = []
    start = 0
    parts = word.split("-")
    for index, part in enumerate(parts):
        if index:
            cuts.extend((start - 1, start))
        own = part_cuts(index, part, len(parts))
        if own is None:
            return None
        cuts.extend(start + c for c in own)
        start += len(part) + 1
    return tuple(c for c in cuts if 0 < c < len(word))


def sound_root(root: str, max_syllables: int = 3) -> bool:
    """A plausible unknown root: >= MIN_FALLBACK_ROOT letters, 2..max_syllables vowel groups (Tagalog
    roots are mostly disyllabic), Tagalog syllables (at most two consonants before a vowel, one
    after the last; ng is one consonant)."""
    vowel_groups = len(re.findall(r"[aeiou]+", root))
    if len(root) < MIN_FALLBACK_ROOT or not 2 <= vowel_groups <= max_syllables:
        return False
    runs = re.split(r"[aeiou]+", root.replace("ng", "N"))
    return len(runs[0]) <= 2 and len(runs[-1]) <= 1 and all(len(run) <= 2 for run in runs[1:-1])


def fallback_cuts(part: str, found: list[Analysis]) -> tuple[int, ...]:
    """Cuts for a part none of whose analyses has an attested root (an unknown root: nagkikipkip).
    Accepted: a reduplicant or an infix with another affix (nag|ki|kipkip, s|in|u|suri, su|suri|in,
    i|d|in|eklara), or a prefix of the inventory of >= 3 letters ending in a consonant or >= 4
    ending in a vowel (nag|suri, naka|sukbit); the root must be one that sound_root accepts; the
    analysis with the most cuts wins. An infix alone is not enough: on the FrequencyWords list it
    cut as many plain words (m|in|uto, n|um|ero, t|in|apay) as unknown verbs (s|um|ugod)."""
    best: tuple[int, ...] = ()
    for analysis in found:
        markers, cuts = analysis.markers, analysis.cuts
        strong = (len(markers) >= 2 and ("redup" in markers or "infix" in markers)) or (
            markers == PREFIX and len(cuts) == 1 and cuts[0] >= (3 if _consonant(part[cuts[0] - 1]) else 4))
        if strong and analysis.weight == 1.0 and any(sound_root(r) for r in analysis.roots):
            if (len(analysis.cuts), analysis.cuts) > (len(best), best):
                best = analysis.cuts
    return best


@lru_cache(maxsize=1)
def default_cutter() -> Cutter:
    return Cutter()


def read_frequency_csv(frequency_csv: Path) -> dict[str, int]:
    """word -> count from a CSV with columns `normalized`, `frequency` (case folded, summed)."""
    counts: dict[str, int] = {}
    try:
        with open(frequency_csv, encoding="utf-8", newline="") as handle:
            for line_no, record in enumerate(csv.DictReader(handle), 2):
                try:
                    word, count = record["normalized"].strip().lower(), int(record["frequency"])
                except (KeyError, TypeError, ValueError, AttributeError):
                    raise MorphcptError(f"{frequency_csv}:{line_no}: expected columns normalized,frequency (an integer)") from None
                counts[word] = counts.get(word, 0) + count
    except OSError as exc:
        raise MorphcptError(f"{frequency_csv}: cannot read ({exc.strerror})") from exc
    return counts


def build_lexicon(source: Path | dict[str, int], output: Path, inventory: AffixInventory | None = None,
                  provenance: list[str] | None = None) -> int:
    """Write the root lexicon from word counts (a dict, or a CSV read by read_frequency_csv).

    Every analysis of every word credits its roots with the word (one form) and its count; the word
    itself is credited as its own root. Kept: roots of >= 2 forms, and words of >= MIN_WORD_COUNT
    occurrences with their counts. provenance: header lines naming the sources (default: the CSV).
    Returns the number of lines written."""
    inventory = inventory or default_inventory()
    raw = source if isinstance(source, dict) else read_frequency_csv(source)
    counts = {w: c for w, c in raw.items() if re.fullmatch(r"[a-zñ]+", w)}
    provenance = provenance or [f"word counts of {source}"]
    forms: dict[str, int] = {}
    mass: dict[str, int] = {}
    for word, count in counts.items():
        roots = {word, *(r for a in analyses(word, inventory) for r in a.roots)}
        for root in roots:
            forms[root] = forms.get(root, 0) + 1
            mass[root] = mass.get(root, 0) + count
    keep = sorted(w for w in set(forms) | set(counts)
                  if forms.get(w, 0) >= 2 or counts.get(w, 0) >= MIN_WORD_COUNT)
    output = Path(output)
    tmp = output.with_name(f".{output.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as out:
        out.write(f"# morphcpt root lexicon v{LEXICON_VERSION}: form<TAB>count<TAB>forms<TAB>mass (see cutter.py)\n")
        out.write("# Built by morphcpt.tokenization.cutter.build_lexicon from:\n")
        out.writelines(f"# {line}\n" for line in provenance)
        for w in keep:
            c = counts.get(w, 0)
            f = forms.get(w, 0)
            out.write(f"{w}\t{c}\t{f if f >= 2 else 0}\t{mass.get(w, 0) if f >= 2 else 0}\n")
    tmp.replace(output)
    return len(keep)


def text_cuts(text: str, cutter: Cutter | None = None, before: str = "", after: str = "") -> list[int]:
    """Cut offsets in a piece of text; a word touching an edge where before/after is a letter is not cut."""
    cutter = cutter or default_cutter()
    cuts: list[int] = []
    for match in WORD_RE.finditer(text):
        start, end = match.span()
        if (start == 0 and before and before.isalpha()) or (end == len(text) and after and after.isalpha()):
            continue
        cuts.extend(start + c for c in cutter.word_cuts(match.group()))
    return cuts
