"""WarmupDecay and SlantedTriangular at fixed steps, against numbers worked out by hand."""

import math

import keras
import numpy as np
import pytest

from tfrnn.training.schedules import SlantedTriangular, WarmupDecay

# peak 0.1, 10 steps in all, the first 2 warming up: decay runs over steps 2..10.
STEPS = [0, 1, 2, 4, 6, 8, 10, 15]
EXPECTED = {
    # warmup 0 -> 0.05 -> 0.1, then the decay factor at progress (step - 2) / 8.
    "constant": [0.0, 0.05, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1],
    "linear": [0.0, 0.05, 0.1, 0.075, 0.05, 0.025, 0.0, 0.0],
    "cosine": [
        0.0,
        0.05,
        0.1,
        0.1 * 0.5 * (1 + math.cos(math.pi * 0.25)),  # 0.0853553...
        0.05,  # halfway: cos(pi / 2) = 0
        0.1 * 0.5 * (1 + math.cos(math.pi * 0.75)),  # 0.0146446...
        0.0,
        0.0,  # past the end: stays at 0
    ],
}


def _values(schedule, steps=STEPS):
    return [float(schedule(step)) for step in steps]


@pytest.mark.parametrize("decay", EXPECTED)
def test_values_at_fixed_steps(decay):
    schedule = WarmupDecay(0.1, total_steps=10, warmup_steps=2, decay=decay)
    np.testing.assert_allclose(_values(schedule), EXPECTED[decay], rtol=1e-6, atol=1e-9)


def test_cosine_reference_numbers():
    schedule = WarmupDecay(0.1, total_steps=10, warmup_steps=2, decay="cosine")
    np.testing.assert_allclose(_values(schedule, [4, 8]), [0.0853553390593, 0.0146446609407], rtol=1e-6)


def test_no_warmup_starts_at_peak():
    linear = _values(WarmupDecay(2e-3, 4, 0, "linear"), [0, 1, 2, 3, 4])
    np.testing.assert_allclose(linear, [2e-3, 1.5e-3, 1e-3, 5e-4, 0.0], rtol=1e-6, atol=1e-12)
    constant = _values(WarmupDecay(2e-3, 4, 0, "constant"), [0, 3, 9])
    np.testing.assert_allclose(constant, [2e-3] * 3, rtol=1e-6)


def test_warmup_is_linear_up_to_peak():
    schedule = WarmupDecay(1.0, total_steps=100, warmup_steps=8, decay="linear")
    np.testing.assert_allclose(_values(schedule, range(9)), [i / 8 for i in range(9)], rtol=1e-6)


def test_tensor_steps_as_in_the_optimizer():
    schedule = WarmupDecay(0.1, total_steps=10, warmup_steps=2, decay="linear")
    assert float(schedule(keras.ops.convert_to_tensor(6, dtype="int64"))) == pytest.approx(0.05, rel=1e-6)


def test_config_round_trip():
    schedule = WarmupDecay(3e-3, total_steps=120, warmup_steps=12, decay="cosine")
    restored = keras.optimizers.schedules.deserialize(keras.optimizers.schedules.serialize(schedule))
    assert isinstance(restored, WarmupDecay)
    assert restored.get_config() == schedule.get_config()
    np.testing.assert_allclose(_values(restored, [0, 30, 120]), _values(schedule, [0, 30, 120]))


def test_unknown_decay():
    with pytest.raises(ValueError, match="step"):
        WarmupDecay(0.1, 10, 0, "step")


def test_slanted_triangular_values():
    """T = 100, cut_fraction 0.1: cut = 10, the fall spans 10 * (1 / 0.1 - 1) = 90 steps; with
    peak 0.32 and ratio 32, lr = 0.01 (1 + 31 p)."""
    schedule = SlantedTriangular(0.32, total_steps=100, cut_fraction=0.1, ratio=32)
    steps = [0, 5, 9, 10, 19, 55, 100, 150]
    p = [0.0, 0.5, 0.9, 1.0, 1 - 9 / 90, 0.5, 0.0, 0.0]  # past T it stays at the floor
    np.testing.assert_allclose(_values(schedule, steps), [0.01 * (1 + 31 * q) for q in p], rtol=1e-6)
    np.testing.assert_allclose(_values(schedule, [0, 10, 55, 100]), [0.01, 0.32, 0.165, 0.01], rtol=1e-6)


def test_slanted_triangular_with_a_short_run_rises_in_one_step():
    schedule = SlantedTriangular(1.0, total_steps=5, cut_fraction=0.1, ratio=4)  # floor(0.5) = 0 -> cut 1
    np.testing.assert_allclose(
        _values(schedule, [0, 1, 4, 10]), [0.25, 1.0, (1 + (1 - 3 / 9) * 3) / 4, 0.25], rtol=1e-6
    )


def test_slanted_triangular_in_the_optimizer():
    optimizer = keras.optimizers.SGD(SlantedTriangular(0.32, total_steps=100))
    optimizer.iterations.assign(10)
    assert float(optimizer.learning_rate) == pytest.approx(0.32, rel=1e-6)
    restored = keras.optimizers.schedules.deserialize(keras.optimizers.schedules.serialize(optimizer._learning_rate))
    assert isinstance(restored, SlantedTriangular) and restored.get_config() == {
        "peak_learning_rate": 0.32,
        "total_steps": 100,
        "cut_fraction": 0.1,
        "ratio": 32,
    }


@pytest.mark.parametrize(("kwargs", "message"), [({"cut_fraction": 0.0}, "cut_fraction"), ({"ratio": 0.5}, "ratio")])
def test_slanted_triangular_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SlantedTriangular(0.1, 10, **kwargs)
