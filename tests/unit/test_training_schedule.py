"""The training learning-rate schedule: warm-up, plateau halvings and the cosine decay."""

from __future__ import annotations

import itertools

import pytest

pytest.importorskip("torch")

from models.training.train import learning_rate


def test_warmup_rises_linearly_to_the_base_rate() -> None:
    assert learning_rate(0, 1e-3) == pytest.approx(1e-3 / 500)
    assert learning_rate(249, 1e-3) == pytest.approx(0.5e-3)
    assert learning_rate(499, 1e-3) == pytest.approx(1e-3)
    assert learning_rate(10_000, 1e-3) == pytest.approx(1e-3)


def test_plateau_scale_multiplies_the_rate() -> None:
    assert learning_rate(10_000, 1e-3, plateau_scale=0.25) == pytest.approx(0.25e-3)


def test_cosine_decay_starts_flat_ends_at_min_scale_and_stays_there() -> None:
    kwargs = {"decay_start": 5000, "decay_steps": 2000, "min_scale": 0.1}
    assert learning_rate(4000, 1e-3, **kwargs) == pytest.approx(1e-3)
    assert learning_rate(5000, 1e-3, **kwargs) == pytest.approx(1e-3)
    assert learning_rate(6000, 1e-3, **kwargs) == pytest.approx(0.55e-3)
    assert learning_rate(7000, 1e-3, **kwargs) == pytest.approx(0.1e-3)
    assert learning_rate(9000, 1e-3, **kwargs) == pytest.approx(0.1e-3)
    rates = [learning_rate(s, 1e-3, **kwargs) for s in range(5000, 7001, 100)]
    assert all(a >= b for a, b in itertools.pairwise(rates))


def test_no_decay_without_a_start_step() -> None:
    assert learning_rate(6000, 1e-3, decay_start=None, decay_steps=2000) == pytest.approx(1e-3)
