"""The optimizer a TrainConfig describes."""

import keras

from tfrnn.training.schedules import SlantedTriangular, WarmupDecay

# Variables that never get weight decay: biases and normalisation scales/offsets.
NO_DECAY = ["bias", "gamma", "beta", "layer_norm", "layernorm", "LayerNorm"]


def make_optimizer(train_config, steps_per_epoch):
    """Builds Adam or AdamW with the configured schedule and gradient clipping.

    Args:
        train_config: tfrnn.config.TrainConfig. Optimizer, rates, warmup, decay, clipping.
        steps_per_epoch: int. Optimizer steps in one epoch (for the schedule).

    Returns:
        keras.optimizers.Optimizer.
    """
    c = train_config
    total_steps = max(c.epochs * steps_per_epoch, 1)
    learning_rate = c.learning_rate
    if c.decay == "slanted":
        learning_rate = SlantedTriangular(c.learning_rate, total_steps, cut_fraction=c.warmup_ratio)
    elif c.warmup_ratio > 0 or c.decay != "constant":
        learning_rate = WarmupDecay(c.learning_rate, total_steps, round(c.warmup_ratio * total_steps), c.decay)
    if c.optimizer == "adamw":
        optimizer = keras.optimizers.AdamW(
            learning_rate=learning_rate, weight_decay=c.weight_decay, clipnorm=c.clipnorm
        )
        optimizer.exclude_from_weight_decay(var_names=NO_DECAY)
        return optimizer
    return keras.optimizers.Adam(learning_rate=learning_rate, clipnorm=c.clipnorm)
