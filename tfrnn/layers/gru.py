"""GRU from its equations, in Keras' gate order (z, r, h), with both reset conventions."""

import keras
from keras import ops

from tfrnn.layers.base import ProjectedCell, ProjectedRNN, masked_matmul


@keras.saving.register_keras_serializable(package="tfrnn")
class GRUCell(ProjectedCell):
    """Gated recurrent unit, weight-compatible with `keras.layers.GRUCell`.

        z   = recurrent_activation(x_t W_z + b_z + h_{t-1} U_z + b'_z)      (update gate)
        r   = recurrent_activation(x_t W_r + b_r + h_{t-1} U_r + b'_r)      (reset gate)
        reset_after=True:  hh = activation(x_t W_h + b_h + r * (h_{t-1} U_h + b'_h))
        reset_after=False: hh = activation(x_t W_h + b_h + (r * h_{t-1}) U_h)
        h_t = z * h_{t-1} + (1 - z) * hh

    With `reset_after=True` (Keras' default and cuDNN's convention) the bias is `(2, 3*units)`:
    row 0 the input bias b, row 1 the recurrent bias b'. With `reset_after=False` it is
    `(3*units,)` and there is no b'.

    Args:
        recurrent_activation: str or callable. Gate activation (sigmoid).
        reset_after: bool. Apply the reset gate after the recurrent matmul.
        **kwargs: see `ProjectedCell`.
    """

    gates = 3

    def __init__(self, units, recurrent_activation="sigmoid", reset_after=True, **kwargs):
        super().__init__(units, **kwargs)
        self.recurrent_activation = keras.activations.get(recurrent_activation)
        self.reset_after = reset_after

    def bias_shape(self):
        return (2, 3 * self.units) if self.reset_after else (3 * self.units,)

    def input_bias(self):
        if self.bias is None or not self.reset_after:
            return self.bias
        return self.bias[0]

    def recurrent_step(self, projected, states, training=False):
        h_tm1 = states[0]  # (batch, units)
        masks = self.recurrent_masks(h_tm1, training)
        recurrent_kernel = self.effective("recurrent_kernel")  # (units, 3*units)
        x_z, x_r, x_h = ops.split(projected, 3, axis=-1)
        if self.reset_after:
            inner = masked_matmul(h_tm1, recurrent_kernel, masks)  # (batch, 3*units)
            if self.use_bias:
                inner = inner + self.bias[1]
            inner_z, inner_r, inner_h = ops.split(inner, 3, axis=-1)
            z = self.recurrent_activation(x_z + inner_z)
            r = self.recurrent_activation(x_r + inner_r)
            hh = self.activation(x_h + r * inner_h)
        else:
            units = self.units
            inner = masked_matmul(h_tm1, recurrent_kernel[:, : 2 * units], masks and masks[:2])  # (batch, 2*units)
            inner_z, inner_r = ops.split(inner, 2, axis=-1)
            z = self.recurrent_activation(x_z + inner_z)
            r = self.recurrent_activation(x_r + inner_r)
            h_for_candidate = h_tm1 * masks[2] if masks else h_tm1
            hh = self.activation(x_h + ops.matmul(r * h_for_candidate, recurrent_kernel[:, 2 * units :]))
        h = z * h_tm1 + (1 - z) * hh
        return h, [h]

    def get_config(self):
        config = {
            "recurrent_activation": keras.activations.serialize(self.recurrent_activation),
            "reset_after": self.reset_after,
        }
        return {**super().get_config(), **config}


@keras.saving.register_keras_serializable(package="tfrnn")
class GRU(ProjectedRNN):
    """GRU layer; `keras.layers.GRU`'s weights load into it unchanged.

    Args: see `ProjectedRNN` (layer) and `GRUCell` (cell).
    """

    cell_class = GRUCell
    cell_name = "gru_cell"
    fused_kind = "gru"
