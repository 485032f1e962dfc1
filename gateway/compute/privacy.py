"""Calibrated noise from OpenDP: the Laplace mechanism on each measure's vector of exact values.

The query's ε is split evenly over its measures (sequential composition, pure ε-DP, δ = 0).
A measure of L1 sensitivity Δ released with ε_m gets Laplace noise of scale Δ / ε_m: discrete
Laplace for counts, continuous Laplace for clamped sums. OpenDP builds each mechanism and its
privacy map proves that the release of that vector costs at most ε_m.
"""

import functools
import math
from dataclasses import dataclass

from gateway.compute.rules import Measure


@functools.cache
def _opendp():
    """Return OpenDP's prelude, loaded at the first release (not with the gateway: memory)."""
    import opendp.prelude as dp

    dp.enable_features("contrib")
    return dp


# A hair of slack so that OpenDP's conservatively rounded privacy map stays within ε_m.
SLACK = 1 + 1e-9


class PrivacyError(Exception):
    """A mechanism could not be built within its share of ε: nothing is released."""


@dataclass(frozen=True)
class Noised:
    """One measure released: its noisy vector and the noise it carries."""

    measure: Measure
    values: list[float]
    epsilon: float
    scale: float

    @property
    def mechanism(self) -> str:
        return "discrete_laplace" if self.measure.integer else "laplace"

    @property
    def error_95(self) -> float:
        """Return t with P(|noise| > t) = 0.05 for Laplace of this scale: scale · ln 20."""
        return self.scale * math.log(20)


def release(measure: Measure, exact: list[float], epsilon: float) -> Noised:
    """Return `exact` with Laplace noise calibrated to `measure`'s sensitivity and `epsilon`."""
    if epsilon <= 0 or not math.isfinite(epsilon):
        raise PrivacyError(f"expected a positive ε, found {epsilon}")
    sensitivity = measure.sensitivity
    if sensitivity <= 0:  # a sum clamped to [0, 0] says nothing: release its zeros
        return Noised(measure, [0.0 for _ in exact], epsilon, 0.0)
    scale = sensitivity / epsilon * SLACK
    dp = _opendp()
    if measure.integer:
        domain = dp.vector_domain(dp.atom_domain(T=int))
        mechanism = dp.m.make_laplace(domain, dp.l1_distance(T=int), scale=scale)
        spent = mechanism.map(int(math.ceil(sensitivity)))
        values = [float(v) for v in mechanism([int(round(v)) for v in exact])]
    else:
        domain = dp.vector_domain(dp.atom_domain(T=float, nan=False))
        mechanism = dp.m.make_laplace(domain, dp.l1_distance(T=float), scale=scale)
        spent = mechanism.map(float(sensitivity))
        values = list(mechanism([float(v) for v in exact]))
    if spent > epsilon * (1 + 1e-6):
        raise PrivacyError(f"the mechanism would spend ε {spent}, more than its share {epsilon}")
    return Noised(measure, values, epsilon, scale)
