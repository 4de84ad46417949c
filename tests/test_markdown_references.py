"""Every Markdown file the project names exists in it.

The scanner reads every git-tracked text file (``git ls-files``; binary files and tests/data/,
which holds verbatim upstream excerpts, are skipped) and collects its references to ``*.md``
files: Markdown link targets (``[text](docs/mutation.md)``, ``[text](README.md#quick-start)``;
the anchor is not checked) and bare mentions in prose, comments and docstrings
(``docs/theory.md``, ``patches/README.md``). A reference
resolves when the file it names exists, relative to the citing file's directory or to the
repository root, inside the repository, and belongs to the project (tracked, or new and not
ignored by git; never under the private ``shared/`` notes).

Not references, so not checked: URLs (``https://...``), templated or globbed paths
(``{tox_root}/...``, ``<env>.md``, ``*.md``), a path that is the whole of a quoted string
literal outside Markdown (code building a file name: ``tmp_path / "report.md"``), a path given
to ``--output`` or ``-o`` (a file a command writes), and a path inside a git-ignored directory
(an output such as a merged report under results/).

Unresolved references are listed as ``file:line: reference``, one a line.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Iterable, List, Tuple

import pytest

ROOT = Path(__file__).resolve().parents[1]
SKIPPED_DIRECTORIES = ("tests/data/",)  # verbatim upstream excerpts
PRIVATE = ("shared/",)  # private notes next to a checkout: never part of the project
MARKDOWN_SUFFIXES = (".md", ".markdown")

_URL = re.compile(r"(?:[A-Za-z][A-Za-z0-9+.-]*://|www\.|mailto:)[^\s)\]>\"'`]*")
_LINK = re.compile(r"\]\(\s*<?([^()\s<>]+)>?(?:\s+[\"'][^\"']*[\"'])?\s*\)")
# A path token ending in .md, optionally with an anchor. The look-behind keeps it from starting
# inside a longer word, a template ({x}, <x>, $X), a glob (*) or a home directory (~).
_MENTION = re.compile(r"(?<![\w.\-/*<>{}$%~\\@+])((?:/|(?:\.\.?/)*)(?:[\w\-]+[./])*[\w\-]+\.md)"
                      r"(#[\w\-.]*)?(?![\w\-/*])")
_OUTPUT_OPTION = re.compile(r"(?:--output[= ]|-o )\s*$")

Reference = Tuple[int, str]  # (line number, the reference as written)


def git(root: Path, *args: str, stdin: str = "") -> str:
    result = subprocess.run(["git", "-C", str(root)] + list(args), input=stdin,
                            capture_output=True, text=True, encoding="utf-8")
    assert result.returncode in (0, 1), f"git {' '.join(args)} failed: {result.stderr.strip()}"
    return result.stdout


def git_files(root: Path, *options: str) -> List[str]:
    return [name for name in git(root, "ls-files", "-z", *options).split("\0") if name]


def read_text(path: Path) -> str | None:
    """The file's text, or None for a binary file (a NUL byte, or not UTF-8)."""
    data = path.read_bytes()
    if b"\0" in data[:8192]:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _is_markdown(name: str) -> bool:
    return name.endswith(MARKDOWN_SUFFIXES)


def _quoted_whole(line: str, start: int, end: int) -> bool:
    before, after = line[start - 1:start], line[end:end + 1]
    return before in ("'", '"') and before == after


def references(text: str, markdown: bool) -> List[Reference]:
    """The ``*.md`` references of a text, in order, each once per line."""
    found: List[Reference] = []
    for number, line in enumerate(text.splitlines(), start=1):
        on_line: List[str] = []
        for match in _LINK.finditer(line):
            target = match.group(1)
            path = target.split("#", 1)[0].split("?", 1)[0]
            if path.endswith(".md") and not _URL.match(target):
                on_line.append(target)
        # URLs are blanked out (same length, so the columns stay) before looking for mentions.
        plain = _URL.sub(lambda url: " " * len(url.group(0)), line)
        for match in _MENTION.finditer(plain):
            start, end = match.span()
            if not markdown and _quoted_whole(plain, start, end):
                continue  # code building a file name, not a mention
            if _OUTPUT_OPTION.search(plain[:start]):
                continue  # a file the command writes
            on_line.append(match.group(0))
        found += [(number, reference) for reference in dict.fromkeys(on_line)]
    return found


def _candidates(root: Path, citing: str, reference: str) -> List[Path]:
    path = reference.split("#", 1)[0]
    if path.startswith("/"):
        return [root / path.lstrip("/")]
    return [(root / citing).parent / path, root / path]


def _inside(root: Path, path: Path) -> str | None:
    """``path`` relative to ``root`` (normalised, no symlinks resolved), or None if outside."""
    absolute = Path(*_normalised(path.parts))
    try:
        return absolute.relative_to(root).as_posix()
    except ValueError:
        return None


def _normalised(parts: Iterable[str]) -> List[str]:
    kept: List[str] = []
    for part in parts:
        if part == "..":
            if len(kept) > 1:
                kept.pop()
        elif part != ".":
            kept.append(part)
    return kept


def unresolved_references(root: Path) -> List[str]:
    """``file:line: reference`` for every reference in the project that does not resolve."""
    root = Path(root).resolve()
    project = {name for name in git_files(root, "--cached", "--others", "--exclude-standard")
               if not name.startswith(PRIVATE)}
    pending: List[Tuple[str, int, str, List[str]]] = []
    for name in git_files(root):
        if name.startswith(SKIPPED_DIRECTORIES) or not (root / name).is_file():
            continue
        text = read_text(root / name)
        if text is None:
            continue
        for number, reference in references(text, _is_markdown(name)):
            inside = [rel for rel in (_inside(root, path)
                                      for path in _candidates(root, name, reference)) if rel]
            if not any(rel in project and (root / rel).is_file() for rel in inside):
                pending.append((name, number, reference, inside))
    # A path in a git-ignored directory names an output (a merged report), not a document.
    asked = sorted({rel for *_, inside in pending for rel in inside})
    ignored = set(git(root, "check-ignore", "--no-index", "--stdin", "-z",
                      stdin="\0".join(asked) + "\0").split("\0")) if asked else set()
    return [f"{name}:{number}: {reference}" for name, number, reference, inside in pending
            if not (inside and any(rel in ignored and not rel.startswith(PRIVATE)
                                   for rel in inside))]


def test_every_markdown_file_the_project_names_exists():
    if not (ROOT / ".git").exists():
        pytest.skip(f"{ROOT} is not a git checkout")
    problems = unresolved_references(ROOT)
    assert not problems, (
        f"{len(problems)} references to Markdown files that do not exist in the project "
        "(paths are relative to the citing file's directory or to the repository root):\n"
        + "\n".join(problems))


def test_scanner_reports_a_bad_reference(tmp_path):
    """The scanner on a small repository: it finds what is missing, and only that."""
    md = ".md"  # built up, so that this file itself names no missing Markdown file

    repo = tmp_path / "repo"

    def write(rel: str, text, binary: bool = False) -> None:
        path = repo / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if binary:
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")

    write("README" + md, "\n".join([
        "# Top",
        "See [the theory](docs/theory" + md + "#length-map) and docs/guide" + md + ".",
        "Also [gone](docs/gone" + md + "), https://example.com/remote" + md + ",",
        "a glob *" + md + ", {root}/x" + md + " and `gainkit report --output out" + md + "`.",
        "Merged into results/merged" + md + "; private notes: shared/notes" + md + ".",
    ]) + "\n")
    write("docs/theory" + md, "Back to [the top](../README" + md + "); see guide" + md + ".\n"
          "Outside: ../../elsewhere" + md + "\n")
    write("docs/guide" + md, "Nothing here.\n")
    write("src/mod.py", '"""Module (see theory' + md + ')."""\n'
          'OUT = "report' + md + '"  # code building a name\n'
          '# docs/theory' + md + ' is fine, docs/missing' + md + ' is not\n')
    write("tests/data/excerpt.py", "# upstream text: nowhere" + md + "\n")
    write("image.png", b"\x89PNG\r\n\x1a\n\0\0 lost" + md.encode() + b"\n", binary=True)
    write(".gitignore", "results/\n")
    write("shared/notes" + md, "private\n")
    (tmp_path / ("elsewhere" + md)).write_text("outside the repository\n")
    git(repo, "init", "-q")
    git(repo, "add", "README" + md, "docs", "src", "tests", "image.png", ".gitignore")

    assert unresolved_references(repo) == [
        "README" + md + ":3: docs/gone" + md,
        "README" + md + ":5: shared/notes" + md,
        "docs/theory" + md + ":2: ../../elsewhere" + md,
        "src/mod.py:1: theory" + md,
        "src/mod.py:3: docs/missing" + md,
    ]
