"""LSTM from its equations, in Keras' gate order (i, f, c, o)."""

import keras
from keras import ops

from tfrnn.layers.base import ProjectedCell, ProjectedRNN, masked_matmul


@keras.saving.register_keras_serializable(package="tfrnn")
class LSTMCell(ProjectedCell):
    """Long short-term memory cell, weight-compatible with `keras.layers.LSTMCell`.

        i, f, o = recurrent_activation(x_t W_{i,f,o} + h_{t-1} U_{i,f,o} + b_{i,f,o})
        g       = activation(x_t W_g + h_{t-1} U_g + b_g)
        c_t     = f * c_{t-1} + i * g
        h_t     = o * activation(c_t)

    The kernels hold the four blocks side by side in the order i, f, g (Keras calls it c), o.

    Args:
        recurrent_activation: str or callable. Gate activation (sigmoid).
        unit_forget_bias: bool. Initialise the forget-gate bias to 1, as Keras does.
        **kwargs: see `ProjectedCell`.
    """

    gates = 4
    state_count = 2

    def __init__(self, units, recurrent_activation="sigmoid", unit_forget_bias=True, **kwargs):
        super().__init__(units, **kwargs)
        self.recurrent_activation = keras.activations.get(recurrent_activation)
        self.unit_forget_bias = unit_forget_bias

    def bias_initializer_fn(self):
        if not self.unit_forget_bias:
            return self.bias_initializer
        units, init = self.units, self.bias_initializer

        def bias_initializer(_, *args, **kwargs):  # (4*units,): [i, f=1, g, o]
            return ops.concatenate(
                [
                    init((units,), *args, **kwargs),
                    keras.initializers.get("ones")((units,), *args, **kwargs),
                    init((2 * units,), *args, **kwargs),
                ]
            )

        return bias_initializer

    def recurrent_step(self, projected, states, training=False):
        h_tm1, c_tm1 = states  # (batch, units) each
        z = projected + masked_matmul(
            h_tm1, self.effective("recurrent_kernel"), self.recurrent_masks(h_tm1, training)
        )  # (batch, 4*units)
        z_i, z_f, z_g, z_o = ops.split(z, 4, axis=-1)
        c = self.recurrent_activation(z_f) * c_tm1 + self.recurrent_activation(z_i) * self.activation(z_g)
        h = self.recurrent_activation(z_o) * self.activation(c)
        return h, [h, c]

    def get_config(self):
        config = {
            "recurrent_activation": keras.activations.serialize(self.recurrent_activation),
            "unit_forget_bias": self.unit_forget_bias,
        }
        return {**super().get_config(), **config}


@keras.saving.register_keras_serializable(package="tfrnn")
class LSTM(ProjectedRNN):
    """LSTM layer; `keras.layers.LSTM`'s weights load into it unchanged.

    Args: see `ProjectedRNN` (layer) and `LSTMCell` (cell).
    """

    cell_class = LSTMCell
    cell_name = "lstm_cell"
    fused_kind = "lstm"
