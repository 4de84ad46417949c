"""The series and the patch tool on Debian's real pytorch source trees (1.13.1 and 2.6.0),
whose version.txt says 1.13.0a0 and 2.6.0a0, as every upstream branch checkout does.

The trees hold the files the series touches and version.txt, verbatim from Debian's upstream
tarballs (tests/debian_sources.py); without the Debian archive the tests skip, saying why.
"""

from __future__ import annotations

import email
import email.policy
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.version import Version

import debian_sources
from gainkit.patching.plan import APPLIED, APPLIES, CONFLICT, UPSTREAM, make_plan
from gainkit.patching.targets import tree_target

PRERELEASE = {"1.13.1": "1.13.0a0", "2.6.0": "2.6.0a0"}
SELU_LOOP = re.compile(r"for fn in \[[^\]]*['\"]selu['\"]\]:")


@pytest.fixture(params=sorted(debian_sources.SUITES))
def debian_tree(request, tmp_path):
    version = request.param
    try:
        files = debian_sources.source_files(version)
    except debian_sources.SourceUnavailable as error:
        pytest.skip(f"Debian's pytorch {version} source is not reachable: {error}")
    tree = tmp_path / f"pytorch-{version}"
    for member, data in files.items():
        (tree / member).parent.mkdir(parents=True, exist_ok=True)
        (tree / member).write_bytes(data)
    return version, tree


def _torch_patches(series):
    return [patch for patch in series
            if all(path.startswith("torch/") for path in _paths(patch.path))]


def _paths(patch: Path) -> list:
    numstat = subprocess.run(["git", "apply", "--numstat", str(patch)], capture_output=True,
                             text=True, check=True).stdout
    return [line.split("\t")[2] for line in numstat.splitlines()]


def test_debian_trees_say_their_prerelease(debian_tree):
    version, tree = debian_tree
    assert (tree / "version.txt").read_text().strip() == PRERELEASE[version]
    target = tree_target(str(tree))
    assert target.version == Version(PRERELEASE[version]) and target.version.is_prerelease


def test_plain_git_apply_check_of_every_torch_patch_fails(debian_tree, series):
    """Both trees have every torch/ change upstream: plain git must refuse each patch."""
    version, tree = debian_tree
    patches = _torch_patches(series)
    assert patches
    for patch in patches:
        result = subprocess.run(["git", "apply", "--check", str(patch.path)], cwd=str(tree),
                                capture_output=True, text=True,
                                env=dict(os.environ, GIT_CEILING_DIRECTORIES=str(tree.parent)))
        assert result.returncode != 0, f"{patch.name} applies to Debian's {version}"


def test_status_calls_the_backports_upstream_and_finds_the_test_fix(debian_tree, series):
    version, tree = debian_tree
    plan = make_plan(series, tree_target(str(tree)))
    torch_names = {patch.name for patch in _torch_patches(series)}
    assert not plan.having(CONFLICT)
    for verdict in plan.verdicts:
        if verdict.patch.name in torch_names:
            assert verdict.status in (UPSTREAM, "N/A"), (verdict.patch.name, verdict.reason)
            assert verdict.reason.startswith(f"version.txt says {PRERELEASE[version]}, a "
                                             "pre-release")
    assert {verdict.status for verdict in plan.verdicts
            if verdict.patch.upstream is not None} & {UPSTREAM}
    applies = plan.having(APPLIES)
    assert len(applies) == 1 and all(rel.startswith("test/") for rel in applies[0].files)


def test_apply_revert_and_export_on_a_debian_checkout(debian_tree, series, series_dir, git,
                                                      run_cli, digest, tmp_path):
    version, tree = debian_tree
    git(tree, "init", "-q")
    git(tree, "add", "-A")
    git(tree, "commit", "-q", "-m", f"Debian pytorch {version}")
    original, head = digest(tree), git(tree, "rev-parse", "HEAD").strip()
    applied = run_cli("apply", "--tree", str(tree), env={
        "GIT_COMMITTER_DATE": "2030-01-02T00:00:00+0000"})
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert applied.stdout.splitlines()[-1] == "applied 1 patches"
    test_file = "test/nn/test_init.py" if Version(version) >= Version("2.0") \
        else "test/test_nn.py"
    assert SELU_LOOP.search((tree / test_file).read_text())
    plan = make_plan(series, tree_target(str(tree)))
    (made,) = plan.having(APPLIED)

    out = tmp_path / "patches"
    out.mkdir()
    for name in [patch.name for patch in series] + ["series"]:
        (out / name).write_bytes((series_dir / name).read_bytes())
    exported = subprocess.run([sys.executable, "-m", "gainkit.tools.patch", "export", "--tree",
                               str(tree), "--patches", str(out), "HEAD"],
                              capture_output=True, text=True)
    assert exported.returncode == 0, exported.stderr
    new = email.message_from_bytes((out / made.patch.name).read_bytes(),
                                   policy=email.policy.default).get_content()
    old = email.message_from_bytes(made.patch.path.read_bytes(),
                                   policy=email.policy.default).get_content()
    old_message, new_message = old.partition("\n---\n")[0], new.partition("\n---\n")[0]
    assert new_message == re.sub(r"Last-Update: \S+", "Last-Update: 2030-01-02", old_message)

    def hunks(text):  # the changed lines, wherever the real file has them
        return [line for line in text.partition("\n---\n")[2].splitlines()
                if line[:1] in "+-" and not line.startswith(("+++", "---"))]

    assert hunks(new) == hunks(old)

    assert run_cli("revert", "--tree", str(tree)).returncode == 0
    assert git(tree, "rev-parse", "HEAD").strip() == head
    assert digest(tree) == original
