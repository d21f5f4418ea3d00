"""The sources of Patok's root lexicon and of its dev gold set: none is an evaluation benchmark.

- FrequencyWords `tl` (github.com/hermitdave/FrequencyWords, content/2018/tl/tl_full.txt; word
  counts from OpenSubtitles 2018, CC BY-SA 4.0): one `word count` per line.
- UniMorph `tgl` (github.com/unimorph/tgl, file `tgl`; Tagalog verb paradigms, CC BY-SA 3.0):
  `lemma<TAB>form<TAB>features` per line. Accents are dropped and the glottal-stop apostrophe
  removed (`gáwa'` -> gawa); a line whose lemma or form is then not lower-case letters (with hyphens
  inside the form) is counted as skipped, never silently dropped.

UniMorph's lemmas are split by a seeded hash (`is_dev_lemma`): the forms of a quarter of them are
held out of the lexicon and make the dev gold set (scripts/build_patok_data.py), so the dev set
measures the cutter on roots the lexicon was not given; FrequencyWords (running text) goes into
the lexicon whole, as the CPT corpus would. pacute-bench, CUTE, LangGame, the addition set and the
Universal Dependencies treebanks are used by nothing here.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from morphcpt.errors import MorphcptError

FREQUENCY_WORDS = {
    "url": "https://raw.githubusercontent.com/hermitdave/FrequencyWords/525f9b560de45753a5ea01069454e72e9aa541c6/content/2018/tl/tl_full.txt",
    "commit": "525f9b560de45753a5ea01069454e72e9aa541c6",
    "sha256": "83defa364a79c87e6f4e18f6589a4b4a5e1fe5722d5afe9792cd9ee3aec509f8",
    "licence": "CC BY-SA 4.0 (content; code MIT), (c) Hermit Dave; word counts from OpenSubtitles 2018",
}
UNIMORPH_TGL = {
    "url": "https://raw.githubusercontent.com/unimorph/tgl/799d79de338d1370ebfbeabb9823a0e8f86a2b6a/tgl",
    "commit": "799d79de338d1370ebfbeabb9823a0e8f86a2b6a",
    "sha256": "84bcc773fde9430d9c8f9d10c72cd4ebca6410eac0eb8408accf0fd6b49e840b",
    "licence": "CC BY-SA 3.0, UniMorph (annotator Jennifer White; source: NIU Center for Southeast Asian Studies)",
}
DEV_SPLIT_SEED = "morphcpt-patok-dev-1"
DEV_SHARE = 4  # one lemma in DEV_SHARE is held out for the dev set
WORD_RE = re.compile(r"[a-zñ]+")
FORM_RE = re.compile(r"[a-zñ]+(?:-[a-zñ]+)*")


@dataclass(frozen=True)
class Paradigm:
    lemma: str
    form: str
    features: str


def check_sha256(path: Path, expected: str) -> None:
    """Stop with a clear error when a source file is not the pinned version."""
    try:
        digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError as exc:
        raise MorphcptError(f"{path}: cannot read ({exc.strerror})") from exc
    if digest != expected:
        raise MorphcptError(f"{path}: sha256 {digest} is not the pinned {expected}; fetch the pinned version "
                            "(URLs in morphcpt.tokenization.lexicon_sources)")


def _lines(path: Path) -> list[str]:
    try:
        return Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise MorphcptError(f"{path}: cannot read ({exc})") from exc


def read_frequency_words(path: Path) -> Counter:
    """word -> count from a FrequencyWords list (`word count` per line; case folded, summed)."""
    counts: Counter = Counter()
    for line_no, line in enumerate(_lines(path), 1):
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) != 2 or not fields[1].isdigit():
            raise MorphcptError(f"{path}:{line_no}: expected 'word count' (a word, a space, an integer)")
        counts[fields[0].lower()] += int(fields[1])
    if not counts:
        raise MorphcptError(f"{path}: no words")
    return counts


def normalize(text: str) -> str:
    """Lower case without accents or the glottal-stop apostrophe (UniMorph writes `gáwa'`)."""
    text = unicodedata.normalize("NFD", text.lower().replace("'", "").replace("\u2019", ""))
    return unicodedata.normalize("NFC", "".join(ch for ch in text if not unicodedata.combining(ch)))


def read_unimorph(path: Path) -> tuple[list[Paradigm], list[tuple[int, str]]]:
    """(paradigm cells, skipped (line number, line)) of a UniMorph file; a line without three tab-separated
    fields is an error, one whose normalized lemma/form is not a plain word is returned as skipped."""
    cells, skipped = [], []
    for line_no, line in enumerate(_lines(path), 1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 3:
            raise MorphcptError(f"{path}:{line_no}: expected 'lemma<TAB>form<TAB>features'")
        lemma, form = normalize(fields[0]), normalize(fields[1])
        if not WORD_RE.fullmatch(lemma) or not FORM_RE.fullmatch(form):
            skipped.append((line_no, line))
            continue
        cells.append(Paradigm(lemma, form, fields[2]))
    return cells, skipped


def is_dev_lemma(lemma: str) -> bool:
    """Whether a UniMorph lemma is held out of the lexicon for the dev set (seeded, stable)."""
    digest = hashlib.sha256(f"{DEV_SPLIT_SEED}:{lemma}".encode()).hexdigest()
    return int(digest, 16) % DEV_SHARE == 0


def lexicon_counts(frequency_words: Counter, paradigms: list[Paradigm]) -> Counter:
    """Word counts the lexicon is built from: FrequencyWords' counts plus one per form of a UniMorph
    lemma that is not held out (a paradigm attests its root even where subtitles never use it)."""
    counts = Counter(frequency_words)
    for cell in paradigms:
        if not is_dev_lemma(cell.lemma):
            counts[cell.form] += 1
    return counts


def provenance_lines() -> list[str]:
    return [
        f"FrequencyWords tl 2018 ({FREQUENCY_WORDS['url']}, sha256 {FREQUENCY_WORDS['sha256']}; {FREQUENCY_WORDS['licence']})",
        f"UniMorph tgl ({UNIMORPH_TGL['url']}, sha256 {UNIMORPH_TGL['sha256']}; {UNIMORPH_TGL['licence']}),"
        f" the forms of lemmas not held out for the dev set (split seed {DEV_SPLIT_SEED!r}, 1 in {DEV_SHARE} held out)",
        "Licence of this file: CC BY-SA 4.0 (adapted from the above). No evaluation benchmark is a source.",
    ]
