"""The patch series: the ``series`` file, each patch's subject and DEP-3 fields, and the torch
versions it is for (``Torch-Versions``, ``Applied-Upstream``).

A range is read by PEP 440 *ordering*: a pre-release sorts before its release, so a master
checkout that says ``1.8.0a0`` (master names the next release) is inside ``<1.8.0``. A
SpecifierSet alone would exclude it from both ``<1.8.0`` and ``>=1.8.0``, as PEP 440 asks of
release specifiers, which leaves such a tree in no range at all.

Only the patches' mail headers and commit-message fields are read here, with ``email``; what
their diffs do to a target is for git to say, when the series is planned.
"""

from __future__ import annotations

import email
import email.parser
import email.policy
import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from gainkit.patching.errors import PatchError


@dataclass
class Patch:
    path: Path
    subject: str
    fields: Dict[str, str]
    torch_versions: SpecifierSet
    upstream: Version | None

    @property
    def name(self) -> str:
        return self.path.name

    def covers(self, version: Version) -> bool:
        """Whether version lies in Torch-Versions, pre-releases before their release."""
        return in_range(version, self.torch_versions)

    def upstream_has(self, version: Version) -> bool:
        """Whether version is a release (or a pre-release of one) that has the change upstream."""
        return self.upstream is not None and Version(version.base_version) >= self.upstream


_ORDERED = {"<": lambda a, b: a < b, "<=": lambda a, b: a <= b,
            ">": lambda a, b: a > b, ">=": lambda a, b: a >= b}


def in_range(version: Version, specifiers: SpecifierSet) -> bool:
    """Every clause holds, the ordered ones (<, <=, >, >=) by plain version order."""
    public = Version(version.public)  # 1.7.1+cu101 is 1.7.1 here
    for clause in specifiers:
        compare = _ORDERED.get(clause.operator)
        if compare is not None:
            if not compare(public, Version(clause.version)):
                return False
        elif not clause.contains(public, prereleases=True):
            return False
    return True


def default_patch_dir() -> Path:
    """The series installed as gainkit.patches, else the one of this source checkout."""
    spec = importlib.util.find_spec("gainkit.patches")
    candidates = [Path(p) for p in (spec.submodule_search_locations or [])] if spec else []
    candidates.append(Path(__file__).resolve().parents[3] / "patches")
    for candidate in candidates:
        if (candidate / "series").is_file():
            return candidate
    return candidates[-1]


def load_series(patch_dir: Path) -> List[Patch]:
    series = Path(patch_dir) / "series"
    if not Path(patch_dir).is_dir():
        raise PatchError(f"{patch_dir}: not a directory; pass --patches DIR")
    if not series.is_file():
        raise PatchError(f"{series}: no such file; pass --patches DIR")
    try:
        lines = series.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise PatchError(f"{series}: cannot read it: {error}") from None
    patches = []
    for line in lines:
        name = line.split("#", 1)[0].strip()
        if name:
            path = series.parent / name
            if not path.is_file():
                raise PatchError(f"{path}: listed in {series} but missing")
            patches.append(read_patch(path))
    return patches


def read_fields(commit_message: str) -> Dict[str, str]:
    """The fields of a commit message: its last paragraphs that are all ``Name: value``."""
    fields = {}  # type: Dict[str, str]
    for paragraph in reversed(commit_message.strip().split("\n\n")):
        block = email.parser.HeaderParser().parsestr(paragraph.strip() + "\n\n")
        if block.defects or block.get_payload().strip() or not block.keys():
            break
        fields = {**{key: " ".join(value.split()) for key, value in block.items()}, **fields}
    return fields


def read_patch(path: Path) -> Patch:
    with path.open("rb") as handle:
        message = email.message_from_binary_file(handle, policy=email.policy.default)
    body = (message.get_payload(decode=True) or b"").decode("utf-8", "replace")
    if message["Subject"] is None or message["From"] is None or "\ndiff --git " not in body:
        missing = "Subject" if message["Subject"] is None else (
            "From" if message["From"] is None else "diff --git")
        raise PatchError(f"{path}: not a git format-patch file (no {missing})")
    fields = read_fields(("\n" + body).split("\n---\n", 1)[0])
    subject = re.sub(r"^\[PATCH[^\]]*\]\s*", "", " ".join(str(message["Subject"]).split()))
    try:
        versions = SpecifierSet(fields["Torch-Versions"])
        upstream = fields.get("Applied-Upstream")
        return Patch(path, subject, fields, versions,
                     Version(upstream.split(",")[0]) if upstream else None)
    except KeyError:
        raise PatchError(f"{path}: no Torch-Versions field") from None
    except (InvalidSpecifier, InvalidVersion) as error:
        raise PatchError(f"{path}: {error}") from None
