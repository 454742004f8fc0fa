"""SimpleRNN: h_t = activation(x_t W + h_{t-1} U + b)."""

import keras

from tfrnn.layers.base import ProjectedCell, ProjectedRNN, masked_matmul


@keras.saving.register_keras_serializable(package="tfrnn")
class SimpleRNNCell(ProjectedCell):
    """Fully connected recurrent cell, weight-compatible with `keras.layers.SimpleRNNCell`.

    h_t = activation(dropout(x_t) @ kernel + bias + dropout(h_{t-1}) @ recurrent_kernel)

    Args: see `ProjectedCell`.
    """

    gates = 1

    def recurrent_step(self, projected, states, training=False):
        h_tm1 = states[0]  # (batch, units)
        z = projected + masked_matmul(h_tm1, self.effective("recurrent_kernel"), self.recurrent_masks(h_tm1, training))
        h = self.activation(z)
        return h, [h]


@keras.saving.register_keras_serializable(package="tfrnn")
class SimpleRNN(ProjectedRNN):
    """Fully connected RNN layer; `keras.layers.SimpleRNN`'s weights load into it unchanged.

    Args: see `ProjectedRNN` (layer) and `ProjectedCell` (cell).
    """

    cell_class = SimpleRNNCell
    cell_name = "simple_rnn_cell"
