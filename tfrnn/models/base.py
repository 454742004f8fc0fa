"""What tfrnn's classifiers share: the softmax head and config-based serialization."""

import keras


def probabilities_head(x, num_classes):
    """Dense softmax over the labels, float32 even under mixed precision.

    Args:
        x: tensor. `(batch, features)`.
        num_classes: int. Number of labels.

    Returns:
        Tensor `(batch, num_classes)`.
    """
    return keras.layers.Dense(
        num_classes, activation="softmax", dtype="float32", name="probabilities"
    )(x)


class Classifier(keras.Model):
    """A functional model built in `__init__` from its constructor arguments (keras-hub's
    pattern): `get_config` returns those arguments and `from_config` calls the constructor.

    Subclasses build their graph, call `super().__init__(inputs, outputs, config=...)`.
    """

    def __init__(self, inputs, outputs, config, **kwargs):
        super().__init__(inputs, outputs, **kwargs)
        self.config = config

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable, **self.config}

    @classmethod
    def from_config(cls, config):
        return cls(**config)
