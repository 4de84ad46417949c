"""gainkit.outputs, the one check and writer behind every output option: one line naming the
path and the OS's reason before any work, and whole files or none.

Each tool's own test file points its options at the same places (the ``unwritable`` fixture):
test_report.py, test_mutate_tool.py, test_suite_package.py, test_check_tool.py.
"""

from __future__ import annotations

import errno
import os

import pytest

from gainkit import outputs


@pytest.mark.parametrize("nested", [False, True], ids=["in-it", "in-a-subfolder-of-it"])
def test_a_file_that_cannot_be_written_is_named_with_the_reason(unwritable, nested):
    folder, reason = unwritable
    path = folder / "sub" / "out.json" if nested else folder / "out.json"
    with pytest.raises(outputs.OutputError) as raised:
        outputs.check_file(str(path), "--json")
    message = str(raised.value)
    assert message.startswith(f"--json {path}: ") and message.endswith(reason)
    assert "\n" not in message
    assert not os.path.lexists(path)


def test_a_folder_that_cannot_be_written_is_named_with_the_reason(unwritable):
    folder, reason = unwritable
    with pytest.raises(outputs.OutputError, match=f"^--plots {folder}/plots: .*{reason}$"):
        outputs.check_folder(str(folder / "plots"), "--plots")


def test_a_writable_place_passes_and_is_left_as_it_was(tmp_path):
    outputs.check_file(str(tmp_path / "new" / "deeper" / "out.json"), "--json")
    outputs.check_folder(str(tmp_path / "plots"), "--plots")
    assert os.listdir(tmp_path) == []  # no probe file, no folder created by a check


def test_a_directory_is_not_a_file(tmp_path):
    with pytest.raises(outputs.OutputError, match="is a directory"):
        outputs.check_file(str(tmp_path), "--output")


def test_write_replaces_whole_and_keeps_the_umask(tmp_path):
    path = tmp_path / "made" / "report.md"
    outputs.write_text(str(path), "first\n", "--output")
    outputs.write_text(str(path), "second\n", "--output")
    assert path.read_text() == "second\n"
    assert os.listdir(path.parent) == ["report.md"]
    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask


def test_a_write_that_fails_midway_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "report.md"
    path.write_text("old report\n")

    def disk_full(descriptor):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(outputs.os, "fsync", disk_full)
    with pytest.raises(outputs.OutputError, match=r"^--output .*: writing failed: No space "
                                                  r"left on device \(nothing half-written"):
        outputs.write_text(str(path), "new report, cut short\n", "--output")
    assert path.read_text() == "old report\n"
    assert os.listdir(tmp_path) == ["report.md"]
