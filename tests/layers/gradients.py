"""Backend-agnostic value-and-gradient of a scalar function of a layer's trainable weights."""

import keras
import numpy as np


def value_and_grads(layer, loss_fn, x):
    """Evaluates loss_fn(layer(x)) and its gradient with respect to `layer.trainable_variables`.

    Args:
        layer: keras.layers.Layer. A built layer.
        loss_fn: callable. Maps the layer's output to a scalar.
        x: np.ndarray. The layer's input.

    Returns:
        (loss as float, list of gradients as np.ndarray in trainable_variables order).
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            loss = loss_fn(layer(x))
        grads = tape.gradient(loss, layer.trainable_variables)
        return float(loss), [np.asarray(g) for g in grads]
    if backend == "jax":
        import jax

        trainable = [v.value for v in layer.trainable_variables]
        non_trainable = [v.value for v in layer.non_trainable_variables]

        def f(weights):
            out, _ = layer.stateless_call(weights, non_trainable, x)
            return loss_fn(out)

        loss, grads = jax.value_and_grad(f)(trainable)
        return float(loss), [np.asarray(g) for g in grads]
    if backend == "torch":
        layer.zero_grad()
        loss = loss_fn(layer(x))
        loss.backward()
        return float(loss), [v.value.grad.cpu().numpy() for v in layer.trainable_variables]
    raise NotImplementedError(backend)
