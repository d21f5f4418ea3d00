"""The design document lives in the repository: nothing points at the original spec users do not
have (its section citations or the folder it came from), and every `docs/design.md §N` citation
names a section that exists."""

from __future__ import annotations

import os
import re
from pathlib import Path

DESIGN_DOC = Path("docs") / "design.md"
# Folders that are not part of the repository's content (see .gitignore): environments, caches,
# workflow outputs, build and test leftovers.
SKIPPED_DIRS = {".git", ".venv", ".cache", ".snakemake", ".pytest_cache", ".hypothesis", ".whl", ".gl",
                "__pycache__", "build", "gpu_check_out", "lightning_logs", "node_modules"}
# Built from pieces so that this file does not match its own patterns.
SPEC_CITATION = re.compile(r"\b" + "DESIGN" + r"(?:\.md)?\s*§")
SPEC_FOLDER = re.compile(r"(?:\.\./|/work/)" + "shared" + r"\b")
DOC_CITATION = re.compile(r"\bdesign\.md((?:\s*(?:,|and|or|/)?\s*§\s*\d+)+)")
SECTION_HEADING = re.compile(r"^## (\d+)\. ", re.MULTILINE)


def _skipped(name: str) -> bool:
    return name in SKIPPED_DIRS or name.startswith("results") or name.endswith(".egg-info")


def repository_text_files(root: Path):
    """(relative path, text) of every text file of the repository outside skipped folders."""
    this_file = Path(__file__).resolve()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not _skipped(d))
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if name == ".git" or path.is_symlink() or path.resolve() == this_file:
                continue
            data = path.read_bytes()
            if b"\0" in data:
                continue  # binary
            yield path.relative_to(root), data.decode("utf-8", errors="replace")


def cited_sections(text: str) -> list[tuple[int, int]]:
    """(line number, section number) of every `design.md §N` citation, lists like `§2, §5` included."""
    found = []
    for match in DOC_CITATION.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        found += [(line, int(n)) for n in re.findall(r"§\s*(\d+)", match.group(1))]
    return found


def design_sections(root: Path) -> set[int]:
    return {int(n) for n in SECTION_HEADING.findall((root / DESIGN_DOC).read_text(encoding="utf-8"))}


def test_citation_parser_finds_single_and_listed_sections():
    text = "see docs/design.md §2, §5 and\nper docs/design.md §11's list; design.md §3 and §12\n"
    assert cited_sections(text) == [(1, 2), (1, 5), (2, 11), (2, 3), (2, 12)]
    assert not SPEC_CITATION.search(text)
    assert SPEC_CITATION.search("as in " + "DESIGN" + " §4") and SPEC_FOLDER.search("facts in ../" + "shared/probes")


def test_design_doc_has_numbered_sections_and_the_readme_links_it(repo_root):
    sections = design_sections(repo_root)
    assert sections == set(range(1, len(sections) + 1)) and len(sections) >= 12, sorted(sections)
    assert f"]({DESIGN_DOC.as_posix()})" in (repo_root / "README.md").read_text(encoding="utf-8")


def test_nothing_cites_the_original_spec_or_its_folder(repo_root):
    offenders = []
    for rel, text in repository_text_files(repo_root):
        for line_no, line in enumerate(text.splitlines(), 1):
            if SPEC_CITATION.search(line) or SPEC_FOLDER.search(line):
                offenders.append(f"{rel}:{line_no}: {line.strip()[:100]}")
    assert not offenders, ("these lines point at a document or folder users do not have; cite "
                           f"{DESIGN_DOC.as_posix()} §N instead:\n" + "\n".join(offenders))


def test_every_design_doc_citation_names_an_existing_section(repo_root):
    sections = design_sections(repo_root)
    wrong = [f"{rel}:{line}: §{n}" for rel, text in repository_text_files(repo_root)
             for line, n in cited_sections(text) if n not in sections]
    assert not wrong, (f"{DESIGN_DOC.as_posix()} has sections {sorted(sections)}; these citations name "
                       "others:\n" + "\n".join(wrong))


def test_sections_referred_to_inside_the_design_doc_exist(repo_root):
    # The document refers to its own sections as plain "§N": each must be a heading.
    refs = {int(n) for n in re.findall(r"§\s*(\d+)", (repo_root / DESIGN_DOC).read_text(encoding="utf-8"))}
    assert refs and refs <= design_sections(repo_root), sorted(refs - design_sections(repo_root))
