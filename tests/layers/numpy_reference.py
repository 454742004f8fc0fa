"""The recurrent equations in plain NumPy, float64: the reference the layers are checked against."""

import numpy as np


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def simple_rnn_step(x, states, kernel, recurrent_kernel, bias):
    (h,) = states
    h = np.tanh(x @ kernel + h @ recurrent_kernel + bias)
    return h, [h]


def lstm_step(x, states, kernel, recurrent_kernel, bias):
    h, c = states
    i, f, g, o = np.split(x @ kernel + h @ recurrent_kernel + bias, 4, axis=-1)
    c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
    h = sigmoid(o) * np.tanh(c)
    return h, [h, c]


def gru_step(x, states, kernel, recurrent_kernel, bias, reset_after=True):
    (h,) = states
    u = h.shape[-1]
    if reset_after:
        x_z, x_r, x_h = np.split(x @ kernel + bias[0], 3, axis=-1)
        r_z, r_r, r_h = np.split(h @ recurrent_kernel + bias[1], 3, axis=-1)
        z, r = sigmoid(x_z + r_z), sigmoid(x_r + r_r)
        hh = np.tanh(x_h + r * r_h)
    else:
        x_z, x_r, x_h = np.split(x @ kernel + bias, 3, axis=-1)
        z = sigmoid(x_z + h @ recurrent_kernel[:, :u])
        r = sigmoid(x_r + h @ recurrent_kernel[:, u : 2 * u])
        hh = np.tanh(x_h + (r * h) @ recurrent_kernel[:, 2 * u :])
    h = z * h + (1 - z) * hh
    return h, [h]


def feedback_step(base_step, feedback_kernel, feedback_gain):
    """h_t = f(h_{t-1}, x_t) + gain * tanh(h_{t-1} @ feedback_kernel)."""

    def step(x, states, *weights, **kwargs):
        out, new_states = base_step(x, states, *weights, **kwargs)
        h = out + feedback_gain * np.tanh(states[0] @ feedback_kernel)
        return h, [h, *new_states[1:]]

    return step


def run(step, x, states, *weights, mask=None, go_backwards=False, **kwargs):
    """Runs `step` over x (batch, time, dim); masked steps keep the previous output and states.

    Returns:
        (outputs (batch, time, units), final states).
    """
    order = range(x.shape[1])[::-1] if go_backwards else range(x.shape[1])
    outputs, out = [], np.zeros_like(states[0])
    for t in order:
        new_out, new_states = step(x[:, t], states, *weights, **kwargs)
        keep = np.ones((x.shape[0], 1), bool) if mask is None else mask[:, t : t + 1]
        out = np.where(keep, new_out, out)
        states = [np.where(keep, n, s) for n, s in zip(new_states, states)]
        outputs.append(out)
    return np.stack(outputs, axis=1), states
