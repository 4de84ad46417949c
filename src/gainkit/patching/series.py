"""The patch series: the ``series`` file, each patch's subject and DEP-3 fields, and the torch
versions it is for (``Torch-Versions``, ``Applied-Upstream``).

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


def read_patch(path: Path) -> Patch:
    with path.open("rb") as handle:
        message = email.message_from_binary_file(handle, policy=email.policy.default)
    body = (message.get_payload(decode=True) or b"").decode("utf-8", "replace")
    commit_message = ("\n" + body).split("\n---\n", 1)[0]
    fields = {}  # type: Dict[str, str]
    for paragraph in reversed(commit_message.strip().split("\n\n")):
        block = email.parser.HeaderParser().parsestr(paragraph.strip() + "\n\n")
        if block.defects or block.get_payload().strip() or not block.keys():
            break
        fields = {**{key: " ".join(value.split()) for key, value in block.items()}, **fields}
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
