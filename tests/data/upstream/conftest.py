"""The files here are excerpts of upstream tests (patch targets), not tests of this project."""

collect_ignore_glob = ["test_*.py"]
