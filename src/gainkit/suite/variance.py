"""The variance, shape and bound of weights that xavier_* and kaiming_* draw, judged.

A check draws n i.i.d. weights and compares three statistics with their sampling distribution
under the correct implementation:

- the second moment m2 = mean(w^2) (the mean is known to be 0): relative standard deviation
  sqrt((mu4 - 1) / n), mu4 the standardised 4th moment (3 normal, 9/5 uniform);
- the kurtosis m4 / m2^2 (tells normal draws from uniform ones), standard deviation by the
  delta method from the 2nd to 8th moments;
- for uniform draws, max|w|: never above the bound sqrt(3) * std, and below
  bound * (1 - delta) with probability (1 - delta)^n only.

Bands are ``z_alarm`` standard deviations wide (the caller's Bonferroni z); n is chosen so that
a gain off by 5% (variance off by 9.75% or 10.25%) falls outside the band with probability at
least ``1 - P(Z > z_power)``, and a check whose n could not do that fails as such.

Rounding (``rounding_terms``). A weight drawn in a dtype with machine epsilon eps is the exact
draw rounded to a grid of spacing ulp <= eps |w|. The draw's density is smooth on that scale,
so the rounded value is the grid point c with w = c + x, x uniform on +-ulp/2 (Sheppard):
E[c^2] = E[w^2] - E[ulp^2] / 12, so the second moment moves by at most eps^2 / 12 of itself;
E[c^4] = E[w^4] - 6 E[w^2 ulp^2 / 12] + ..., so the kurtosis by at most 2 eps^2 / 3 of itself.
Subnormals have a fixed spacing tiny * eps, which adds (tiny * eps)^2 / 12 to the second moment.
Each band is widened by these bounds: bfloat16 (8 significant bits, eps = 2^-7) moves the
second moment by at most 5.1e-6 and float16 (eps = 2^-10) by 8e-8, against a band of +-5.8%:
half precision needs no wider variance band, and the suite says so by computing it. max|w|
is rounded by up to eps / 2 of itself, which does matter against the bound's slack
(2.4e-3 at n = 7092): the lower check allows it.
"""

from __future__ import annotations

import math
from typing import Dict, List, Tuple

import torch

from gainkit.probe.determinism import seed_rng
from gainkit.suite.designs import upper_tail

GAIN_ERROR = 0.05
# A 5% gain error moves the variance by 1.05^2 - 1 or 1 - 0.95^2; the smaller must show.
VARIANCE_EFFECT = min((1 + GAIN_ERROR) ** 2 - 1, 1 - (1 - GAIN_ERROR) ** 2)


def standard_moment(family: str, order: int) -> float:
    """E[x^order] for x of that family with mean 0 and variance 1 (even orders)."""
    if family == "normal":
        return double_factorial(order - 1)
    # x ~ U(-sqrt(3), sqrt(3))
    return 3.0 ** (order // 2) / (order + 1)


def double_factorial(value: int) -> float:
    result = 1.0
    while value > 1:
        result *= value
        value -= 2
    return result


def second_moment_rel_sd(family: str, draws: int) -> float:
    return math.sqrt((standard_moment(family, 4) - 1) / draws)


def kurtosis_sd(family: str, draws: int) -> float:
    """Delta-method standard deviation of mean(x^4) / mean(x^2)^2 (mean known to be 0)."""
    m4, m6, m8 = (standard_moment(family, order) for order in (4, 6, 8))
    unit = (m8 - m4 ** 2) - 4 * m4 * (m6 - m4) + 4 * m4 ** 2 * (m4 - 1)
    return math.sqrt(unit / draws)


def draws_needed(family: str, z_alarm: float, z_power: float) -> int:
    """Fewest draws whose band still excludes a 5% gain error with the required power."""
    return math.ceil(((z_alarm + z_power) / VARIANCE_EFFECT) ** 2
                     * (standard_moment(family, 4) - 1))


def other(family: str) -> str:
    return "uniform" if family == "normal" else "normal"


def sharpness_problems(family: str, draws: int, z_alarm: float, z_power: float) -> List[str]:
    """Why ``draws`` weights could not show a 5% gain error or tell normal from uniform."""
    problems = []
    sd = second_moment_rel_sd(family, draws)
    if z_alarm * sd + z_power * sd > VARIANCE_EFFECT:
        problems.append("band too wide to see a 5% gain error")
    kurtosis_gap = abs(standard_moment(family, 4) - standard_moment(other(family), 4))
    if (z_alarm * kurtosis_sd(family, draws)
            + z_power * kurtosis_sd(other(family), draws)) > kurtosis_gap:
        problems.append("kurtosis band too wide to tell normal from uniform draws")
    return problems


def draw(initialise, shape: Tuple[int, ...], draws: int, device: str, dtype,
         seed: int) -> torch.Tensor:
    """At least ``draws`` freshly initialised weights of tensors shaped ``shape``, flattened to
    one float64 CPU vector."""
    numel = 1
    for size in shape:
        numel *= size
    tensors = math.ceil(draws / numel)
    seed_rng(seed, device)
    weights = []
    for _ in range(tensors):
        weight = torch.empty(shape, device=device, dtype=dtype)
        initialise(weight)
        weights.append(weight.detach().to("cpu", torch.float64).reshape(-1))
    return torch.cat(weights)


def rounding_terms(dtype, expected_variance: float) -> Tuple[float, float]:
    """Bounds on how far rounding to ``dtype`` moves the second moment (relative) and the
    kurtosis (relative): ``eps^2 / 12 + (tiny eps)^2 / (12 var)`` and ``2 eps^2 / 3`` (module
    docstring)."""
    info = torch.finfo(dtype)
    second = info.eps ** 2 / 12 + (info.tiny * info.eps) ** 2 / (12 * expected_variance)
    return second, 2 * info.eps ** 2 / 3


def judge_draws(weights: torch.Tensor, expected_variance: float, family: str, dtype,
                z_alarm: float, z_power: float, unasserted: Dict[str, str] | None = None
                ) -> Tuple[List[str], Dict[str, object]]:
    """Failure lines (empty: pass) and the record fields of one init's draws.

    ``unasserted`` maps a statistic ("kurtosis") to a known deviation of the kernel that drew
    the weights (gains.toml's [[kernel_deviation]]): outside its band it is recorded with that
    deviation (field ``deviation``) instead of failing; the other statistics are judged as ever.
    """
    unasserted = unasserted or {}
    draws = weights.numel()
    problems = sharpness_problems(family, draws, z_alarm, z_power)
    second_rounding, kurtosis_rounding = rounding_terms(dtype, expected_variance)
    second = (weights ** 2).mean().item()
    ratio = second / expected_variance
    ratio_half_width = z_alarm * second_moment_rel_sd(family, draws) + second_rounding
    kurtosis = (weights ** 4).mean().item() / second ** 2
    kurtosis_half_width = (z_alarm * kurtosis_sd(family, draws)
                           + kurtosis_rounding * standard_moment(family, 4))
    fields = dict(family=family, draws=draws, expected_variance=expected_variance,
                  measured_variance=second, ratio=ratio, band_lo=1 - ratio_half_width,
                  band_hi=1 + ratio_half_width, kurtosis=kurtosis,
                  kurtosis_expected=standard_moment(family, 4),
                  kurtosis_half_width=kurtosis_half_width, z=z_alarm,
                  rounding=second_rounding)
    if abs(ratio - 1) > ratio_half_width:
        problems.append(f"variance {second:.6g} is {ratio:.4f} x the expected "
                        f"{expected_variance:.6g}; band 1 +- {ratio_half_width:.4f} "
                        f"(n={draws}, z={z_alarm:.2f})")
    if abs(kurtosis - standard_moment(family, 4)) > kurtosis_half_width:
        line = (f"kurtosis {kurtosis:.3f}, a {family} has {standard_moment(family, 4):.3f} "
                f"+- {kurtosis_half_width:.3f}")
        if "kurtosis" in unasserted:
            fields["deviation"] = f"{line}: {unasserted['kurtosis']}"
        else:
            problems.append(line)
    if family == "uniform":
        bound = math.sqrt(3 * expected_variance)
        largest = weights.abs().max().item()
        # P(max|w| < bound (1 - slack)) = (1 - slack)^n <= exp(-n slack) = the per-check rate
        slack = -math.log(alarm_rate(z_alarm)) / draws
        rounding = 4 * torch.finfo(dtype).eps
        # rounding to nearest moves the largest weight by up to eps / 2 of itself
        low = bound * (1 - slack) * (1 - torch.finfo(dtype).eps / 2)
        fields.update(max_abs=largest, bound=bound, bound_lo=low)
        if largest > bound * (1 + rounding):
            problems.append(f"max|w| {largest:.6g} exceeds bound {bound:.6g}")
        if largest < low:
            problems.append(f"max|w| {largest:.6g} stays below the bound {bound:.6g} by more "
                            "than chance allows")
    fields["verdict"] = "fail" if problems else "pass"
    return problems, fields


def alarm_rate(z_alarm: float) -> float:
    """The two-sided per-check false-alarm probability that ``z_alarm`` stands for."""
    return 2 * upper_tail(z_alarm)
