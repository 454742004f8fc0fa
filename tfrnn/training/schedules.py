"""Learning-rate schedules: linear warmup from 0, then constant, linear or cosine decay; ULMFiT's
slanted triangular rates."""

import math

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="tfrnn")
class WarmupDecay(keras.optimizers.schedules.LearningRateSchedule):
    """lr(step) = peak * step / warmup_steps during warmup, then decays to 0 at total_steps.

    Args:
        peak_learning_rate: float. The learning rate reached at the end of warmup.
        total_steps: int. Steps of the whole run (epochs * steps per epoch).
        warmup_steps: int. Steps of linear warmup; 0 for none.
        decay: str. "constant", "linear" (to 0 at total_steps) or "cosine" (to 0).
    """

    def __init__(self, peak_learning_rate, total_steps, warmup_steps=0, decay="linear"):
        if decay not in ("constant", "linear", "cosine"):
            raise ValueError(f"`decay` must be constant, linear or cosine, got {decay!r}.")
        self.peak_learning_rate = peak_learning_rate
        self.total_steps = max(int(total_steps), 1)
        self.warmup_steps = int(warmup_steps)
        self.decay = decay

    def __call__(self, step):
        step = ops.cast(step, "float32")
        warmup = float(max(self.warmup_steps, 1))
        decay_steps = float(max(self.total_steps - self.warmup_steps, 1))
        progress = ops.clip((step - self.warmup_steps) / decay_steps, 0.0, 1.0)
        if self.decay == "linear":
            after = 1.0 - progress
        elif self.decay == "cosine":
            after = 0.5 * (1.0 + ops.cos(math.pi * progress))
        else:
            after = ops.ones_like(progress)
        factor = ops.where(step < self.warmup_steps, step / warmup, after)
        return self.peak_learning_rate * factor

    def get_config(self):
        return {
            "peak_learning_rate": self.peak_learning_rate,
            "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps,
            "decay": self.decay,
        }


@keras.saving.register_keras_serializable(package="tfrnn")
class SlantedTriangular(keras.optimizers.schedules.LearningRateSchedule):
    """Slanted triangular learning rates (Howard & Ruder 2018, eq. 3): a short linear rise from
    peak / ratio to peak, then a long linear fall back to peak / ratio.

    cut = floor(T cut_fraction) (at least 1); p = t / cut for t < cut, else
    1 - (t - cut) / (cut (1 / cut_fraction - 1)), at least 0 (steps past T stay at the floor);
    lr(t) = peak (1 + p (ratio - 1)) / ratio.

    Args:
        peak_learning_rate: float. The learning rate at step `cut` (eta_max).
        total_steps: int. Steps of the whole run (T: epochs * steps per epoch).
        cut_fraction: float. The fraction of the steps that rise, in (0, 1).
        ratio: float. How much smaller the lowest rate is than the peak (>= 1).
    """

    def __init__(self, peak_learning_rate, total_steps, cut_fraction=0.1, ratio=32):
        if not 0 < cut_fraction < 1:
            raise ValueError(f"`cut_fraction` must be in (0, 1), got {cut_fraction!r}.")
        if ratio < 1:
            raise ValueError(f"`ratio` must be at least 1, got {ratio!r}.")
        self.peak_learning_rate = peak_learning_rate
        self.total_steps = max(int(total_steps), 1)
        self.cut_fraction = cut_fraction
        self.ratio = ratio

    def __call__(self, step):
        step = ops.cast(step, "float32")
        cut = float(max(math.floor(self.total_steps * self.cut_fraction), 1))
        rising = step / cut
        falling = ops.maximum(1.0 - (step - cut) / (cut * (1.0 / self.cut_fraction - 1.0)), 0.0)
        p = ops.where(step < cut, rising, falling)
        return self.peak_learning_rate * (1.0 + p * (self.ratio - 1.0)) / self.ratio

    def get_config(self):
        return {
            "peak_learning_rate": self.peak_learning_rate,
            "total_steps": self.total_steps,
            "cut_fraction": self.cut_fraction,
            "ratio": self.ratio,
        }
