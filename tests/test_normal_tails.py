"""designs.upper_z / upper_tail (scipy.special) are scipy.stats.norm's isf and sf: the suite
takes its z from them without loading scipy.stats."""

from __future__ import annotations

import pytest
from scipy.stats import norm

from gainkit.suite import designs, variance


@pytest.mark.parametrize("probability", [0.5, 0.05, 1e-4, 1e-3 / 4000, 1e-12, 1e-300])
def test_upper_z_is_norm_isf(probability):
    assert designs.upper_z(probability) == pytest.approx(norm.isf(probability), rel=1e-14)


@pytest.mark.parametrize("z", [0.0, 1.0, 3.5, 5.229, 8.0, 30.0])
def test_upper_tail_is_norm_sf(z):
    assert designs.upper_tail(z) == pytest.approx(norm.sf(z), rel=1e-14)
    assert variance.alarm_rate(z) == pytest.approx(2 * norm.sf(z), rel=1e-14)


def test_bonferroni_z_keeps_the_family_rate():
    z = designs.bonferroni_z(4000, 1e-3)
    assert 4000 * 2 * norm.sf(z) == pytest.approx(1e-3, rel=1e-12)
