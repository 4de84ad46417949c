"""Gain sheets: what `gainkit gains` reports for a torch activation, as data.

For a resolved activation (gainkit.gains.torch_activations): docs/theory.md's gains, PyTorch's
gain, the mean-field behaviour at each gain asked for (gainkit.meanfield.theory), and optionally
measurements of those gains on deep random networks (gainkit.probe.mlp) judged against the
finite-width model (gainkit.meanfield.finitewidth). Presentation is the CLI's (tools/gains.py).
"""

from __future__ import annotations

import math

import numpy as np

from gainkit.gains import torch_activations as acts
from gainkit.meanfield import finitewidth, theory
from gainkit.probe import mlp

NAMED_GAINS = theory.GAIN_NAMES


class SheetError(ValueError):
    """A gain asked for cannot be analysed (strict mode); the message is one line."""


def _definitions(act: theory.Activation) -> dict:
    """docs/theory.md's four gains and the reason when there is no critical gain (theory's)."""
    definitions = theory.gain_definitions(act)
    return dict(definitions, critical_reason=definitions.critical_reason)


def _behaviour(act: acts.TorchActivation, gain: float, source: str, q0: float) -> dict:
    row = {"gain": gain, "source": source}
    field = theory.analyse(act.theory, gain, q0)
    if math.isinf(field.q_star):
        row["no_fixed_point"] = "q -> inf: the signal blows up"
        return row
    row.update((key, getattr(field, key)) for key in MEAN_FIELD_KEYS)
    row["stable"] = row["slope"] <= 1.0
    return row


MEAN_FIELD_KEYS = ("q_star", "post_rms", "chi_1", "slope", "xi_q", "xi_grad", "depth_10x",
                   "regime", "kappa_forward", "kappa_backward")


def analyse(act: acts.TorchActivation, gains: list, q0: float, strict: bool) -> dict:
    """The gain sheet of one activation: its gains (theory.gain_definitions, with the critical
    gain's reason), PyTorch's gain, and a row of mean-field behaviour at PyTorch's gain and at
    each of ``gains`` (numbers or NAMED_GAINS). ``strict``: a gain without a fixed point (or a
    named gain that does not exist) is a SheetError, not a row."""
    definitions = _definitions(act.theory)
    pytorch, pytorch_note = acts.pytorch_gain(act)
    targets = [(pytorch, "pytorch")] if pytorch is not None else []
    for gain in gains:
        if gain in NAMED_GAINS:
            if definitions[gain] is None:
                if strict:
                    raise SheetError(f"{act.name} has no {gain} gain: "
                                     f"{definitions['critical_reason']}")
                continue
            targets.append((definitions[gain], gain))
        else:
            targets.append((gain, "given"))
    rows = []
    for gain, source in targets:
        try:
            rows.append(_behaviour(act, gain, source, q0))
        except ValueError as error:  # theory: hardshrink's dead signal has no kappa
            rows.append({"gain": gain, "source": source, "error": str(error)})
    for row in rows:
        if strict and row["source"] != "pytorch" and "no_fixed_point" in row:
            raise SheetError(f"{act.name} has no fixed point at gain {row['gain']:.7g} "
                             f"({row['source']}): {row['no_fixed_point']}")
        if strict and "error" in row:
            raise SheetError(f"theory cannot analyse {act.name} at gain {row['gain']:.7g}: "
                             f"{row['error']}")
    return {
        "name": act.name, "definition": act.definition, "formula": act.formula,
        "kinks": list(act.kinks), "jumps": list(act.jumps), "homogeneous": act.homogeneous,
        "gains": definitions, "pytorch_gain": pytorch, "pytorch_note": pytorch_note,
        "q0": q0, "at": rows,
    }


VERIFY_WIDTH, VERIFY_DEPTH, VERIFY_DRAWS = 512, 20, 8
_BAND_SIGMAS = 3.0


def verify(act: acts.TorchActivation, rows: list, q0: float) -> list:
    """Measured against predicted, per gain: the output's second moment q_L and the growth
    ``grad_0 / grad_L`` of the mean squared gradient, as geometric means over the draws.

    Predicted: the mean field (theory.profile) and, what the measurement is judged by, the
    finite-width expectation of the log-mean with its band exp(+-3 sd) from the suite's noise
    model (gainkit.meanfield.finitewidth).
    """
    measured = {}  # PyTorch's gain may also be g_f (to rounding): measure it once
    checks = []
    for row in rows:
        if "no_fixed_point" in row or "error" in row:
            continue
        key = round(row["gain"], 12)
        if key not in measured:
            measured[key] = _measure(act, row["gain"], q0)
        checks.append(dict(measured[key], gain=row["gain"], source=row["source"]))
    return checks


def _measure(act: acts.TorchActivation, gain: float, q0: float) -> dict:
    last = finitewidth.window_weights(VERIFY_DEPTH, [VERIFY_DEPTH])
    init = mlp.torch_init("xavier_normal", "linear", gain=gain)  # the gain is given
    measured = mlp.measure(mlp.autograd_pair(act.function), init, VERIFY_WIDTH,
                             VERIFY_DEPTH, VERIFY_DRAWS, q0=(q0,))
    q, chi = theory.profile(act.theory, gain, q0, VERIFY_DEPTH)
    model = finitewidth.finite_width(act.theory, None, gain, q0, VERIFY_DEPTH, VERIFY_WIDTH)
    check = {"width": VERIFY_WIDTH, "depth": VERIFY_DEPTH, "draws": VERIFY_DRAWS}
    for key, values, mean_field, statistic in (
            ("q_out", measured.q[0, :, 0, -1], q[-1], model.statistic(q=last)),
            ("grad_growth", measured.grad[0, :, 0, 0] / measured.grad[0, :, 0, -1],
             np.prod(chi[:-1]), model.statistic(ratio=1.0 - last))):
        with np.errstate(divide="ignore"):
            found = float(np.mean(np.log(values)))
        centre, variance = statistic
        half_width = _BAND_SIGMAS * math.sqrt(variance / VERIFY_DRAWS)
        check[key] = {"measured": math.exp(found), "mean_field": float(mean_field),
                      "predicted": math.exp(centre), "band": math.exp(half_width),
                      "within": bool(abs(found - centre) <= half_width)}
    return check
