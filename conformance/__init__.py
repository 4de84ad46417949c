"""gainkit's conformance suite: ``python -m pytest --pyargs gainkit.conformance``.

A pytest package, so that an installed gainkit runs it from any directory; its options are
all ``--gainkit-*`` so that they cannot clash with a user's own conftest.py.
"""
