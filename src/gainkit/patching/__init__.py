"""The patch series and the tool that checks, applies and reverts it on a torch target.

Targets: a pytorch git checkout, a plain source tree (an unpacked release), or the torch that
an interpreter imports (its site-packages, which take only the ``torch/`` parts of the series).
git decides everything about patch text; the DEP-3 fields and Torch-Versions come from the
patch files via ``email``. A change is all or nothing: it is planned on a scratch copy while
the target is only read, preflighted, then written under a journal and the target's lock, and
a run killed half-way is rolled back by the next one on that target.

One module per step, each saying why it stands apart:

- ``errors``: PatchError and the exit codes;
- ``series``: the patch files and the series file;
- ``targets``: what the series is applied to, and its torch version (a hint only);
- ``plan``: each patch's status, decided by the files' content (3-way in a checkout), and the
  bytes after apply and revert;
- ``git``: how git is run, and what a checkout is asked;
- ``lock``: one run at a time per target;
- ``journal``: what makes a run's writes undoable, and SIGINT held between them;
- ``write``: writing a target all or nothing, and putting it back;
- ``recovery``: rolling back what a killed run left;
- ``export``: patch files written from commits (``git format-patch``, every option fixed);
- ``run``: the commands: ``exclusive`` (the lock, taken once per command, and the Hold that
  ``apply`` and ``revert`` write under), ``check``, ``apply``, ``revert``.

The CLIs are ``gainkit.tools.patch`` and ``gainkit.tools.check``.
"""
