"""Backend-agnostic value-and-gradient of a scalar function of a layer's trainable weights, and
its check against central finite differences."""

import keras
import numpy as np
import pytest


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


def assert_gradients_match_finite_differences(layer, loss_fn, x, rng, directions=3, eps=3e-3):
    """Checks the gradient of loss_fn(layer(x)) along random directions: <grad, v> against the
    central difference (f(w + eps v) - f(w - eps v)) / (2 eps), to 1e-3.

    Args:
        layer: keras.layers.Layer. A built layer; its weights are restored afterwards.
        loss_fn: callable. Maps the layer's output to a scalar.
        x: np.ndarray. The layer's input.
        rng: np.random.Generator. Draws the directions.
        directions: int. How many random directions.
        eps: float. Step; small enough for curvature, large enough for float32 round-off.
    """
    _, grads = value_and_grads(layer, loss_fn, x)
    weights = [np.asarray(v) for v in layer.trainable_variables]
    for _ in range(directions):
        direction = [rng.normal(size=w.shape).astype("float32") for w in weights]
        losses = []
        for sign in (1, -1):
            for var, w, d in zip(layer.trainable_variables, weights, direction):
                var.assign(w + sign * eps * d)
            losses.append(float(loss_fn(layer(x))))
        for var, w in zip(layer.trainable_variables, weights):
            var.assign(w)
        numeric = (losses[0] - losses[1]) / (2 * eps)
        analytic = sum(float(np.sum(g * d)) for g, d in zip(grads, direction))
        assert analytic == pytest.approx(numeric, rel=1e-3, abs=1e-3)
