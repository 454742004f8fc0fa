"""Learning-rate schedule: linear warmup from 0, then constant, linear or cosine decay."""

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
