"""The stability suite's coverage: the gains and inits it runs, the z its bands share, and
each run's design and seed. Shared by conformance/ and its benchmark.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Sequence, Tuple

from gainkit.meanfield import theory
from gainkit.probe.mlp import INITS
from gainkit.suite.designs import (
    CONTROL_FACTORS,
    Design,
    bonferroni_z,
    default_depth,
    plan,
    pool_for_regime,
    settling_depth,
    settling_width,
)
from gainkit.suite.expectations import DEVICE_DTYPES

FAMILY_ALPHA = 1e-3  # false-alarm probability of the whole stability suite
CLAIM_INIT = "xavier_normal"  # the forum's init
PER_DESIGN = 7  # comparisons besides the per-layer ones: window, slope, residual, and the
#                 2 controls x (forward, residual)
PER_CLAIM = 4  # post RMS, growth, 2 controls
PER_POOL = 3  # a gain's regime, on the slopes of all its inits pooled: the band, 2 controls


@dataclass(frozen=True)
class Subject:
    """A gain under test: a calculate_gain case (``case``), or a reference gain outside it."""

    id: str
    activation: str
    slope: float | None
    gain: float
    regime: str
    claim: str
    case: object = None

    def init_arguments(self, init: str) -> Tuple[str, object, float | None]:
        """``(nonlinearity, param, gain)`` for ``mlp.torch_init(init, ...)``.

        kaiming takes ``a`` (leaky_relu's slope, also where gains.toml omits the param) and no
        gain; a reference gain can only be 1 there, as nonlinearity='linear' (what torch's
        SELU docs advise for self-normalising networks).
        """
        kaiming = init.startswith("kaiming")
        if self.case is None:
            if kaiming and self.gain != 1.0:
                raise ValueError(f"{self.id}: kaiming inits cannot express gain {self.gain}")
            return "linear", None, None if kaiming else self.gain
        case = self.case
        if kaiming:
            return case.nonlinearity, case.param if case.has_param else (case.slope or 0), None
        return case.nonlinearity, case.param if case.has_param else None, None


def subjects() -> Tuple[Subject, ...]:
    """gains.toml cases with ``stability = true`` whose network is an MLP, then its references
    (the conv cases are ``gainkit.suite.conv_stacks``')."""
    from gainkit.suite.expectations import GAINS, REFERENCES

    return tuple(
        Subject(case.id, case.activation, case.slope, case.value, case.regime, case.claim, case)
        for case in GAINS if case.stability and case.network == "mlp"
    ) + tuple(
        Subject(ref.id, ref.activation, ref.slope, ref.gain, ref.regime, ref.claim)
        for ref in REFERENCES
    )


def suite_z(covered: Sequence[Subject], depth: int | None = None) -> float:
    """z for the whole suite: every subject x init x device-dtype and every claim, and the
    conv stacks' checks (``conv_stacks.comparisons``): one family, one z."""
    from gainkit.suite import conv_stacks

    comparisons = conv_stacks.comparisons()
    for subject in covered:
        layers = depth or default_depth(theory.analyse(
            theory.activation(subject.activation, subject.slope), subject.gain))
        comparisons += ((layers + PER_DESIGN) * len(INITS) + PER_POOL) * len(DEVICE_DTYPES)
        if subject.claim:
            comparisons += PER_CLAIM * len(DEVICE_DTYPES)
    return bonferroni_z(comparisons, FAMILY_ALPHA)


def suite_design(subject: Subject, init: str, z: float, width: int | None = None,
                 depth: int | None = None, draws: int | None = None,
                 claim: bool = False) -> Design:
    """The design the suite runs for ``subject`` and ``init`` (``claim``: the forum's net,
    deep and wide enough to settle, judged on the post-activation RMS).

    Neither decides the regime alone: a run's chi_1 band must fit the expected regime, and the
    gain's regime proper is judged on the pooled slopes of all its inits (``suite_designs``),
    so no design needs the draws that would tell it on its own."""
    if not claim:
        return suite_designs(subject, z, width, depth, draws)[INITS.index(init)]
    act = theory.activation(subject.activation, subject.slope)
    depth = depth or settling_depth(subject.activation, subject.slope, subject.gain)
    width = width or settling_width(theory.analyse(act, subject.gain))
    return plan(subject.activation, subject.slope, subject.gain, z, width, depth, draws,
                weight_kurtosis(init), judged=("post",), rate=None, weights=weight_ensemble(init))


def suite_designs(subject: Subject, z: float, width: int | None = None,
                  depth: int | None = None, draws: int | None = None) -> Tuple[Design, ...]:
    """The designs of every init (``INITS`` order) of ``subject``, their draws raised together
    where the pooled regime check needs more than their negative controls
    (``designs.pool_for_regime``); ``draws`` given: as given."""
    planned = tuple(plan(subject.activation, subject.slope, subject.gain, z, width, depth,
                         draws, weight_kurtosis(init), rate=None, weights=weight_ensemble(init))
                    for init in INITS)
    return planned if draws is not None else pool_for_regime(planned)


def weight_kurtosis(init: str) -> float:
    """Excess kurtosis of the weights ``init`` draws (uniform: -1.2, else 0)."""
    return -1.2 if "uniform" in init else 0.0


def weight_ensemble(init: str) -> str:
    """The finite-width model's weight ensemble for ``init`` (``finitewidth.WEIGHTS``)."""
    return "orthogonal" if init == "orthogonal" else "gaussian"


def suite_seed(seed: int, subject: Subject, init: str, device: str, dtype_name: str,
               claim: bool = False) -> int:
    """The probe seed of one suite run: stable across processes (crc32, not hash())."""
    key = "/".join((subject.id, init, device, dtype_name, "claim" if claim else "design"))
    return seed * 1000003 + zlib.crc32(key.encode("utf-8")) % 1000003


def scales() -> Tuple[float, ...]:
    """Weight scales of a suite run: nominal, then the negative controls."""
    return (1.0,) + CONTROL_FACTORS
