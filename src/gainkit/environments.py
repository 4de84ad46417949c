"""Another Python environment, seen from this one: what it has installed, and running its own
gainkit there with nothing of this environment leaking in.

``gainkit check --python TARGET`` probes TARGET first (:func:`probe`: which Python, and whether
gainkit, pytest and torch import there, with their versions), so that a target that lacks one
is refused in one line naming what is missing and how to install it, before anything is
patched. It then runs TARGET's own ``gainkit.tools.check`` (:func:`own_gainkit_command`): the
patch series and the suite of the gainkit installed there, on its own Python. Both run
isolated (``python -I``: no user site, no PYTHON* variables, no current folder on sys.path) in
an environment without this one's PYTHONPATH or virtual-environment variables
(:func:`clean_environ`), so a 3.11 caller's site-packages never reach a 3.8 target.

Imported by ``gainkit check``, which runs in old environments too (Python 3.7).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Dict, List

from gainkit.patching.errors import PatchError
from gainkit.patching.targets import run_python

PACKAGES = ("gainkit", "pytest", "torch")
# variables that would make the target import the caller's packages or think it is the
# caller's environment; -I drops the PYTHON* ones for the target itself, this list for the
# processes the target starts (its pytest run)
LEAKING = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONUSERBASE", "PYTHONEXECUTABLE",
           "PYTHONSAFEPATH", "VIRTUAL_ENV", "CONDA_PREFIX", "__PYVENV_LAUNCHER__")

# Python 3.6+ source: no walrus, no f-strings with =, no importlib.metadata.
_PROBE = r"""
import json, sys
found = {"python": "%d.%d.%d" % tuple(sys.version_info[:3]), "prefix": sys.prefix,
         "packages": {}}
for name in PACKAGES:
    try:
        module = __import__(name)
    except ImportError as error:
        missing = getattr(error, "name", None) == name
        found["packages"][name] = {"missing": missing, "error": "%s: %s" % (
            type(error).__name__, error)}
    except Exception as error:
        found["packages"][name] = {"missing": False, "error": "%s: %s" % (
            type(error).__name__, error)}
    else:
        found["packages"][name] = {"version": str(getattr(module, "__version__", "unknown")),
                                   "file": getattr(module, "__file__", None)}
print(json.dumps(found))
""".replace("PACKAGES", repr(PACKAGES))


def clean_environ(environ: Dict[str, str] | None = None) -> Dict[str, str]:
    """``environ`` (default: this process's) without the variables of :data:`LEAKING`."""
    source = os.environ if environ is None else environ
    return {key: value for key, value in source.items() if key not in LEAKING}


@dataclass
class Probe:
    """What :func:`probe` found in a target interpreter."""

    interpreter: str
    python: str
    prefix: str
    packages: Dict[str, dict] = field(default_factory=dict)

    def version(self, name: str) -> str | None:
        return self.packages.get(name, {}).get("version")

    @property
    def missing(self) -> List[str]:
        return [name for name in PACKAGES if self.packages.get(name, {}).get("missing", True)
                and "version" not in self.packages.get(name, {})]

    @property
    def broken(self) -> Dict[str, str]:
        """Packages that are installed but fail to import, with the error."""
        return {name: found["error"] for name, found in self.packages.items()
                if "error" in found and not found.get("missing")}

    def is_this_environment(self) -> bool:
        import sys

        return os.path.realpath(self.prefix) == os.path.realpath(sys.prefix)

    def refusal(self) -> str | None:
        """One line naming what the target lacks and how to install it; None: nothing."""
        where = f"{self.interpreter} (Python {self.python})"
        names = self.missing
        if names:
            have = ", ".join(f"{name} {self.version(name)}" for name in PACKAGES
                             if self.version(name))
            line = "{}: {} {} not installed there{}; install {}: {} -m pip install {}".format(
                where, ", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1
                else names[0], "is" if len(names) == 1 else "are",
                f" (it has {have})" if have else "", "it" if len(names) == 1 else "them",
                self.interpreter, " ".join(names))
            if "gainkit" in names:
                line += " (gainkit from the clone or wheel you installed it from, if not PyPI)"
            return line
        if self.broken:
            name, error = next(iter(self.broken.items()))
            return f"{where}: {name} does not import there: {error}"
        return None


def probe(interpreter: str) -> Probe:
    """Which Python ``interpreter`` is and which of gainkit, pytest and torch import there;
    it runs isolated (``-I``, :func:`clean_environ`) and writes nothing, not even bytecode."""
    stdout = run_python(interpreter, ["-I", "-B", "-c", _PROBE], env=clean_environ())
    try:
        found = json.loads(stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise PatchError(f"{interpreter}: not a Python interpreter gainkit can probe "
                         f"(it printed {stdout.strip()[:80]!r})") from None
    return Probe(interpreter, found["python"], found["prefix"], found["packages"])


def own_gainkit_command(interpreter: str, arguments: List[str]) -> List[str]:
    """The command that runs the target's own ``gainkit check`` on itself, isolated."""
    return [interpreter, "-I", "-m", "gainkit.tools.check"] + list(arguments)
