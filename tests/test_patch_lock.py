"""The patch lock names the run that holds it, even when refused in the instant it is taken."""

from __future__ import annotations

import os
import threading

import pytest

from gainkit.patching.lock import LOCK_NAME, Busy, Lock

fcntl = pytest.importorskip("fcntl", reason="no flock here: patch runs are not serialised")


def test_refused_run_names_the_holder(tmp_path):
    holder = Lock(tmp_path)
    assert holder.acquire()
    try:
        with pytest.raises(Busy) as refused:
            Lock(tmp_path).acquire()
        assert refused.value.pid == str(os.getpid())
    finally:
        holder.release()
    assert not (tmp_path / LOCK_NAME).exists()


def test_refused_before_the_holder_wrote_its_pid_waits_for_it(tmp_path):
    # The holder has taken the flock but not yet written its pid: the refused run must wait
    # for the pid, not report "pid unknown" (a race two runs started together used to hit).
    fd = os.open(str(tmp_path / LOCK_NAME), os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    writer = threading.Timer(0.05, lambda: os.write(fd, b"4242\n"))
    writer.start()
    try:
        with pytest.raises(Busy) as refused:
            Lock(tmp_path).acquire()
        assert refused.value.pid == "4242"
    finally:
        writer.join()
        os.close(fd)


def test_holder_that_never_writes_its_pid_is_unknown(tmp_path):
    fd = os.open(str(tmp_path / LOCK_NAME), os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    try:
        with pytest.raises(Busy) as refused:
            Lock(tmp_path).acquire()
        assert refused.value.pid == "unknown"
    finally:
        os.close(fd)
