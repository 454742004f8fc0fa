"""The feedback cell: h_t = f(h_{t-1}, x_t) + g(h_{t-1}).

f is one step of an LSTM or GRU cell (tfrnn's own, so its weights stay Keras-compatible) and
g is a learned feedback map of the previous hidden state:

    g(h) = gain * tanh(h @ feedback_kernel)

- `feedback_kernel` `(units, units)` starts orthogonal, so `h @ V` keeps the scale of h;
- `gain` `(units,)` starts at zero (as in ReZero, Bachlechner et al. 2020), so at
  initialisation the cell *is* its base cell and training starts from the base cell's
  well-understood dynamics; the feedback path grows only as far as the loss asks.

Why it stays stable over long sequences: tanh bounds the feedback, |g(h)| <= |gain|
element-wise whatever h is, and `gain` is clipped to [-max_gain, max_gain] (default 1) by a
constraint after every update. For the LSTM base, f's output o * tanh(c) lies in (-1, 1), so
|h_t| < 1 + max_gain at every step, and the feedback adds at most max_gain * ||V|| to the
norm of the step Jacobian (||V|| = 1 at initialisation). For the GRU base, h_t = z h_{t-1} + (1 - z) hh + g: each step can add at most
max_gain, so growth is at most linear, and only while the update gate z holds the state.

With `feedback=False` no feedback weights are created and the cell is exactly its base cell.
"""

import keras
from keras import ops
from keras.src.layers.rnn.dropout_rnn_cell import DropoutRNNCell

from tfrnn.layers.base import ProjectedRNN, run_step
from tfrnn.layers.gru import GRUCell
from tfrnn.layers.lora import LoraKernels
from tfrnn.layers.lstm import LSTMCell

BASE_CELLS = {"lstm": LSTMCell, "gru": GRUCell}


@keras.saving.register_keras_serializable(package="tfrnn")
class ClipValue(keras.constraints.Constraint):
    """Clips a weight element-wise to [-limit, limit].

    Args:
        limit: float. The largest absolute value allowed.
    """

    def __init__(self, limit):
        self.limit = limit

    def __call__(self, w):
        return ops.clip(w, -self.limit, self.limit)

    def get_config(self):
        return {"limit": self.limit}


@keras.saving.register_keras_serializable(package="tfrnn")
class FeedbackCell(LoraKernels, keras.layers.Layer, DropoutRNNCell):
    """h_t = f(h_{t-1}, x_t) + gain * tanh(h_{t-1} @ feedback_kernel).

    Args:
        units: int. Size of the hidden state.
        base: str. The step f: "lstm" or "gru".
        feedback: bool. Add g; False makes the cell exactly its base cell.
        feedback_initializer: str or initializer. For `feedback_kernel` (orthogonal).
        feedback_gain_initializer: str or initializer. For `feedback_gain` (zeros).
        feedback_regularizer: regularizer or None. For `feedback_kernel`.
        max_gain: float. `feedback_gain` is clipped to [-max_gain, max_gain].
        **kwargs: the base cell's arguments (dropout, initializers, `lora_rank`, ...) and the
            layer's. With `lora_rank`, LoRA covers the base cell's kernels and `feedback_kernel`.
    """

    def __init__(
        self,
        units,
        base="lstm",
        feedback=True,
        feedback_initializer="orthogonal",
        feedback_gain_initializer="zeros",
        feedback_regularizer=None,
        max_gain=1.0,
        **kwargs,
    ):
        if base not in BASE_CELLS:
            raise ValueError(f"`base` must be one of {sorted(BASE_CELLS)}, got base={base!r}.")
        layer_kwargs = {k: kwargs.pop(k) for k in ("name", "dtype", "trainable") if k in kwargs}
        super().__init__(**layer_kwargs)
        self.base_cell = BASE_CELLS[base](units, dtype=layer_kwargs.get("dtype"), name="base_cell", **kwargs)
        self.units = units
        self.base = base
        self.feedback = feedback
        self.feedback_initializer = keras.initializers.get(feedback_initializer)
        self.feedback_gain_initializer = keras.initializers.get(feedback_gain_initializer)
        self.feedback_regularizer = keras.regularizers.get(feedback_regularizer)
        self.max_gain = max_gain
        self.state_size = self.base_cell.state_size
        self.output_size = units
        self.init_lora(kwargs.get("lora_rank"), kwargs.get("lora_alpha"))

    @property
    def lora_targets(self):
        return ("feedback_kernel",) if self.feedback else ()

    # Dropout lives in the base cell; the RNN layer configures it through these.
    @property
    def dropout(self):
        return self.base_cell.dropout

    @property
    def recurrent_dropout(self):
        return self.base_cell.recurrent_dropout

    def get_dropout_mask(self, step_input):
        return self.base_cell.get_dropout_mask(step_input)

    def get_recurrent_dropout_mask(self, step_input):
        return self.base_cell.get_recurrent_dropout_mask(step_input)

    def reset_dropout_mask(self):
        self.base_cell.reset_dropout_mask()

    def reset_recurrent_dropout_mask(self):
        self.base_cell.reset_recurrent_dropout_mask()

    def build(self, input_shape):
        self.base_cell.build(input_shape)
        if self.feedback:
            self.feedback_kernel = self.add_weight(
                shape=(self.units, self.units),
                name="feedback_kernel",
                initializer=self.feedback_initializer,
                regularizer=self.feedback_regularizer,
            )
            self.feedback_gain = self.add_weight(
                shape=(self.units,),
                name="feedback_gain",
                initializer=self.feedback_gain_initializer,
                constraint=ClipValue(self.max_gain),
            )
        self.build_lora()

    def enable_lora(self, rank, lora_alpha=None, a_initializer="he_uniform", b_initializer="zeros"):
        """LoRA on the base cell's kernels and on `feedback_kernel` (see `LoraKernels.enable_lora`)."""
        if not self.base_cell.lora_enabled:  # enabled already when its config asked for it
            self.base_cell.enable_lora(rank, lora_alpha, a_initializer, b_initializer)
        super().enable_lora(rank, lora_alpha, a_initializer, b_initializer)

    def project_inputs(self, inputs, training=False):
        return self.base_cell.project_inputs(inputs, training)

    def recurrent_step(self, projected, states, training=False):
        output, new_states = self.base_cell.recurrent_step(projected, states, training)
        if not self.feedback:
            return output, new_states
        h_tm1 = states[0]  # (batch, units)
        h = output + self.feedback_gain * ops.tanh(ops.matmul(h_tm1, self.effective("feedback_kernel")))
        return h, [h, *new_states[1:]]

    def call(self, inputs, states, training=False):
        return run_step(self, inputs, states, training)

    def get_initial_state(self, batch_size=None):
        return self.base_cell.get_initial_state(batch_size)

    def get_config(self):
        ser = keras.saving.serialize_keras_object
        base_config = self.base_cell.get_config()
        for key in ("name", "trainable", "dtype", "units"):
            base_config.pop(key, None)
        config = {
            "units": self.units,
            "base": self.base,
            "feedback": self.feedback,
            "feedback_initializer": ser(self.feedback_initializer),
            "feedback_gain_initializer": ser(self.feedback_gain_initializer),
            "feedback_regularizer": ser(self.feedback_regularizer),
            "max_gain": self.max_gain,
        }
        return {**super().get_config(), **base_config, **config}


@keras.saving.register_keras_serializable(package="tfrnn")
class Feedback(ProjectedRNN):
    """Recurrent layer over a `FeedbackCell`.

    Args: see `ProjectedRNN` (layer) and `FeedbackCell` (cell); any LSTMCell/GRUCell
    argument is passed through to the base cell.
    """

    cell_class = FeedbackCell
    cell_name = "feedback_cell"
