"""The training learning-rate schedule: warm-up, plateau halvings and the cosine decay."""

from __future__ import annotations

import itertools

import pytest

pytest.importorskip("torch")

from models.training.train import learning_rate, record_evaluation


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


def test_three_evaluations_without_a_new_best_halve_the_rate() -> None:
    state = {"best_cer": 0.30, "bad_evals": 0, "lr_scale": 1.0}
    assert [record_evaluation(state, c) for c in (0.31, 0.32, 0.33)] == [False, False, False]
    assert state["lr_scale"] == 0.5 and state["bad_evals"] == 0
    assert record_evaluation(state, 0.29) and state["best_cer"] == 0.29


def test_a_new_best_resets_the_count_of_evaluations_without_one() -> None:
    state = {"best_cer": 0.30, "bad_evals": 0, "lr_scale": 1.0}
    for cer in (0.31, 0.32, 0.25, 0.31, 0.32):
        record_evaluation(state, cer)
    assert state["lr_scale"] == 1.0 and state["bad_evals"] == 2


def test_a_scheduled_decay_is_never_halved_by_the_plateau_rule() -> None:
    # a restarted decay's early evaluations lose to the end of the decay before it
    state = {"best_cer": 0.22, "bad_evals": 0, "lr_scale": 1.0}
    assert not any(record_evaluation(state, c, decaying=True) for c in (0.233, 0.227, 0.230, 0.229, 0.228))
    assert state["lr_scale"] == 1.0
    assert record_evaluation(state, 0.219, decaying=True) and state["best_cer"] == 0.219
