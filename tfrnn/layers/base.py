"""Shared machinery for tfrnn's recurrent layers.

A recurrent step splits into two parts:

- an input projection `x_t @ W + b`, which does not depend on the state and so can be
  computed for all time steps at once, in one large matmul, before the loop;
- the recurrence proper, `h_{t-1} @ U` plus the gate non-linearities, which must run
  step by step.

`ProjectedCell` implements a cell as those two halves (`project_inputs` and
`recurrent_step`); its ordinary per-step `call` chains them, so a cell still works inside
`keras.layers.RNN` or `keras.layers.StackedRNNCells`. `ProjectedRNN` is a `keras.layers.RNN`
whose loop runs only the recurrence over the pre-projected sequence.

Only `keras` is imported, never tensorflow, so the layers run on every Keras backend.
`DropoutRNNCell` and the backend loop `rnn` live in `keras.src`: the first gives the cells exactly Keras' dropout-mask
semantics (one mask per sequence, per-gate masks when `recurrent_dropout > 0`, masks
pre-built outside the loop so that JAX stays stateless), the second is the loop
`keras.layers.RNN` itself runs (tf.while_loop, jax.lax.scan, a Python loop on torch). The Keras minor version is pinned
in pyproject.toml for that reason.
"""

import contextlib
import functools

import keras
from keras import ops
from keras.src.backend import rnn as backend_rnn
from keras.src.layers.rnn.dropout_rnn_cell import DropoutRNNCell

from tfrnn.layers import fused
from tfrnn.layers.lora import LoraKernels


def masked_matmul(x, kernel, masks):
    """Multiplies `x` by `kernel`, with one dropout mask per gate block.

    Args:
        x: tensor. `(batch, dim)` or `(batch, time, dim)`.
        kernel: tensor. `(dim, gates * units)`.
        masks: list of tensors or None. `gates` masks of shape `(batch, dim)`; the block
            `kernel[:, k*units:(k+1)*units]` sees `x * masks[k]`. A single mask applies to
            every block. None means no dropout.

    Returns:
        Tensor `(..., gates * units)`.
    """
    if masks is None:
        return ops.matmul(x, kernel)
    if len(x.shape) == 3:
        masks = [ops.expand_dims(m, 1) for m in masks]  # (batch, 1, dim): same mask each step
    if len(masks) == 1:
        return ops.matmul(x * masks[0], kernel)
    blocks = ops.split(kernel, len(masks), axis=1)
    return ops.concatenate([ops.matmul(x * m, k) for m, k in zip(masks, blocks)], axis=-1)


# Arguments that belong to the RNN layer itself; every other keyword goes to the cell.
_LAYER_KWARGS = {"name", "dtype", "trainable", "activity_regularizer", "autocast", "input_shape"}


@functools.cache
def on_accelerator():
    """Whether Keras computes on a GPU or TPU (the first device it lists is not a CPU)."""
    try:
        return not keras.distribution.list_devices()[0].lower().startswith("cpu")
    except AttributeError:  # a backend without keras.distribution support (torch)
        return "cpu" not in str(ops.zeros(()).device).lower()


def _as_list(masks):
    if masks is None:
        return None
    return list(masks) if isinstance(masks, (list, tuple)) else [masks]


def run_step(cell, inputs, states, training):
    """One whole step of a split cell, `recurrent_step(project_inputs(x))`, as `cell.call`.

    Args:
        cell: a cell with `project_inputs` and `recurrent_step`.
        inputs: tensor. `(batch, input_dim)`.
        states: tensor or list of tensors. The previous states, each `(batch, units)`.
        training: bool. Applies dropout when True.

    Returns:
        `(output, new_states)`, the states nested as they came.
    """
    nested = keras.tree.is_nested(states)
    states = list(states) if nested else [states]
    output, new_states = cell.recurrent_step(cell.project_inputs(inputs, training), states, training)
    return output, (new_states if nested else new_states[0])


class ProjectedCell(LoraKernels, keras.layers.Layer, DropoutRNNCell):
    """Base of the tfrnn cells: weights, dropout and the projection/recurrence split.

    Subclasses set `gates` (the number of `units`-wide blocks in the kernels) and implement
    `recurrent_step`. Weights are created as Keras creates them: `kernel`
    `(input_dim, gates*units)`, then `recurrent_kernel` `(units, gates*units)`, then `bias`.

    Args:
        units: int. Size of the hidden state.
        activation: str or callable. Activation of the candidate state and output.
        use_bias: bool. Whether the cell has a bias.
        kernel_initializer: str or initializer. For `kernel`.
        recurrent_initializer: str or initializer. For `recurrent_kernel`.
        bias_initializer: str or initializer. For `bias`.
        kernel_regularizer: regularizer or None. For `kernel`.
        recurrent_regularizer: regularizer or None. For `recurrent_kernel`.
        bias_regularizer: regularizer or None. For `bias`.
        kernel_constraint: constraint or None. For `kernel`.
        recurrent_constraint: constraint or None. For `recurrent_kernel`.
        bias_constraint: constraint or None. For `bias`.
        dropout: float. Fraction of the inputs dropped, one mask per sequence.
        recurrent_dropout: float. Fraction of the recurrent state dropped, one mask per sequence.
        weight_dropout: float. DropConnect (Wan et al. 2013) on `recurrent_kernel`, as in
            AWD-LSTM: in training, the kernel is multiplied by one Bernoulli mask (scaled by
            1 / (1 - weight_dropout)) drawn once per call of the layer, the same for every step
            and sequence of the batch; activations are not masked. A `ProjectedRNN` draws it
            (`dropped_weights`), so the cell takes it only inside tfrnn's layers.
        seed: int or None. Seed of the dropout masks.
        lora_rank: int or None. Enable LoRA on `kernel` and `recurrent_kernel` once built
            (`tfrnn.layers.lora`); a saved LoRA layer's config carries it.
        lora_alpha: float or None. LoRA's scale numerator (None: lora_rank).
    """

    gates = 1
    state_count = 1
    lora_targets = ("kernel", "recurrent_kernel")

    def __init__(
        self,
        units,
        activation="tanh",
        use_bias=True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        kernel_regularizer=None,
        recurrent_regularizer=None,
        bias_regularizer=None,
        kernel_constraint=None,
        recurrent_constraint=None,
        bias_constraint=None,
        dropout=0.0,
        recurrent_dropout=0.0,
        weight_dropout=0.0,
        seed=None,
        lora_rank=None,
        lora_alpha=None,
        **kwargs,
    ):
        if units <= 0:
            raise ValueError(f"`units` must be a positive integer, got units={units}.")
        if not 0.0 <= weight_dropout < 1.0:
            raise ValueError(f"`weight_dropout` must be in [0, 1), got weight_dropout={weight_dropout}.")
        implementation = kwargs.pop("implementation", 2)
        super().__init__(**kwargs)
        self.units = units
        self.activation = keras.activations.get(activation)
        self.use_bias = use_bias
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.recurrent_initializer = keras.initializers.get(recurrent_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = keras.regularizers.get(recurrent_regularizer)
        self.bias_regularizer = keras.regularizers.get(bias_regularizer)
        self.kernel_constraint = keras.constraints.get(kernel_constraint)
        self.recurrent_constraint = keras.constraints.get(recurrent_constraint)
        self.bias_constraint = keras.constraints.get(bias_constraint)
        self.dropout = min(1.0, max(0.0, dropout))
        self.recurrent_dropout = min(1.0, max(0.0, recurrent_dropout))
        # As in Keras: recurrent dropout switches gated cells to one mask per gate.
        self.implementation = 1 if self.recurrent_dropout else implementation
        if self.gates > 1 and self.implementation == 1:
            self.dropout_mask_count = self.gates
        self.weight_dropout = weight_dropout
        self._dropped = {}  # kernel name -> its DropConnect'ed value, only during one call of the layer
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed=seed)
        self.state_size = [units] * self.state_count if self.state_count > 1 else units
        self.output_size = units
        self.init_lora(lora_rank, lora_alpha)

    def bias_shape(self):
        return (self.gates * self.units,)

    def bias_initializer_fn(self):
        return self.bias_initializer

    def build(self, input_shape):
        input_dim = input_shape[-1]
        width = self.gates * self.units
        self.kernel = self.add_weight(
            shape=(input_dim, width),
            name="kernel",
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
        )
        self.recurrent_kernel = self.add_weight(
            shape=(self.units, width),
            name="recurrent_kernel",
            initializer=self.recurrent_initializer,
            regularizer=self.recurrent_regularizer,
            constraint=self.recurrent_constraint,
        )
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                shape=self.bias_shape(),
                name="bias",
                initializer=self.bias_initializer_fn(),
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
            )
        self.build_lora()

    def input_bias(self):
        return self.bias

    def effective(self, name):
        """The kernel `name` as the step uses it: LoRA's update added, and DropConnect'ed
        inside `dropped_weights` in training."""
        return self._dropped[name] if name in self._dropped else super().effective(name)

    @contextlib.contextmanager
    def dropped_weights(self, training):
        """Within the block, `effective("recurrent_kernel")` is the kernel times one dropout
        mask (scaled by 1 / (1 - weight_dropout)) when training with `weight_dropout > 0`.

        The mask is drawn here, before the time loop, so every step of the call shares it; it is
        forgotten on exit, so no tensor outlives its trace (JAX) or its graph (TensorFlow).

        Args:
            training: bool. Drop only when True.
        """
        if not (training and self.weight_dropout > 0.0):
            yield
            return
        kernel = ops.convert_to_tensor(super().effective("recurrent_kernel"))  # (units, gates*units), with LoRA
        self._dropped["recurrent_kernel"] = keras.random.dropout(kernel, self.weight_dropout, seed=self.seed_generator)
        try:
            yield
        finally:
            self._dropped.clear()

    def input_masks(self, inputs, training):
        """Input dropout masks (list, one per gate block) or None."""
        if not (training and 0.0 < self.dropout < 1.0):
            return None
        step = inputs[:, 0, :] if len(inputs.shape) == 3 else inputs
        return _as_list(self.get_dropout_mask(step))

    def recurrent_masks(self, h_tm1, training):
        """Recurrent dropout masks (list, one per gate block) or None."""
        if not (training and 0.0 < self.recurrent_dropout < 1.0):
            return None
        return _as_list(self.get_recurrent_dropout_mask(h_tm1))

    def project_inputs(self, inputs, training=False):
        """Input half of the step, for one step or a whole sequence.

        Args:
            inputs: tensor. `(batch, input_dim)` or `(batch, time, input_dim)`.
            training: bool. Applies input dropout when True.

        Returns:
            Tensor `(..., gates * units)`: `dropout(x) @ kernel + input bias`.
        """
        z = masked_matmul(inputs, self.effective("kernel"), self.input_masks(inputs, training))
        bias = self.input_bias()
        return z if bias is None else z + bias

    def recurrent_step(self, projected, states, training=False):
        """Recurrent half of the step.

        Args:
            projected: tensor. `(batch, gates * units)`, from `project_inputs`.
            states: list of tensors. The previous states, each `(batch, units)`.
            training: bool. Applies recurrent dropout when True.

        Returns:
            `(output, new_states)`: output `(batch, units)` and a list of states.
        """
        raise NotImplementedError

    def call(self, inputs, states, training=False):
        if training and self.weight_dropout > 0.0 and "recurrent_kernel" not in self._dropped:
            raise ValueError(
                "`weight_dropout` needs the mask drawn once per sequence: run the cell in a tfrnn layer "
                "(ProjectedRNN), not step by step in another loop."
            )
        return run_step(self, inputs, states, training)

    def get_initial_state(self, batch_size=None):
        return [ops.zeros((batch_size, self.units), dtype=self.compute_dtype) for _ in range(self.state_count)]

    def get_config(self):
        ser = keras.saving.serialize_keras_object
        config = {
            "units": self.units,
            "activation": keras.activations.serialize(self.activation),
            "use_bias": self.use_bias,
            "kernel_initializer": ser(self.kernel_initializer),
            "recurrent_initializer": ser(self.recurrent_initializer),
            "bias_initializer": ser(self.bias_initializer),
            "kernel_regularizer": ser(self.kernel_regularizer),
            "recurrent_regularizer": ser(self.recurrent_regularizer),
            "bias_regularizer": ser(self.bias_regularizer),
            "kernel_constraint": ser(self.kernel_constraint),
            "recurrent_constraint": ser(self.recurrent_constraint),
            "bias_constraint": ser(self.bias_constraint),
            "dropout": self.dropout,
            "recurrent_dropout": self.recurrent_dropout,
            "weight_dropout": self.weight_dropout,
            "seed": self.seed,
            **self.lora_config(),
        }
        return {**super().get_config(), **config}


class ProjectedRNN(keras.layers.RNN):
    """A `keras.layers.RNN` over a `ProjectedCell` that can hoist the input projection.

    The layer takes the cell's arguments directly (`LSTM(64, dropout=0.1)`) and builds its cell
    as Keras' own layers do. With the input projection hoisted, its loop runs only
    `cell.recurrent_step` over `cell.project_inputs(sequences)`, computed in one matmul for
    all time steps; otherwise it runs `cell.call` step by step, exactly like `keras.layers.RNN`.
    Either way, in training it draws its cells' DropConnect masks (`weight_dropout`) before the loop.

    Args:
        units: int. Size of the hidden state.
        return_sequences: bool. Return the output of every step, `(batch, time, units)`.
        return_state: bool. Also return the final states.
        go_backwards: bool. Process the sequence in reverse.
        stateful: bool. Keep the final states of a batch as the initial states of the next.
        unroll: bool. Unroll the loop (short sequences only).
        zero_output_for_mask: bool. Emit zeros, not the previous output, at masked steps.
        input_projection: str. "hoisted" computes `x_t @ W + b` for all steps in one matmul
            before the loop; "per_step" computes it inside the loop, as Keras does; "auto"
            hoists on a GPU or TPU only. On CPU the loop's copies of the projected tensor,
            `gates` times wider than the input, cost more than the one big matmul saves,
            except under XLA on TensorFlow (measured in docs/benchmarks.md): pass "hoisted"
            there when compiling with `jit_compile=True`.
        implementation: str or int. "auto" runs the backend's fused kernel (cuDNN;
            `tfrnn.layers.fused`) wherever it can take the layer and the equations elsewhere;
            "fused" insists on the kernel (a clear error where it cannot run); "equations" never
            uses it. An int is `keras.layers.LSTM`'s `implementation` (1: one dropout mask per
            gate), with "auto".
        **kwargs: the cell's arguments (see the cell class) and the base layer's.
    """

    cell_class = None
    cell_name = None
    fused_kind = None  # "lstm" / "gru": the fused kernel that can run this layer

    def __init__(
        self,
        units,
        return_sequences=False,
        return_state=False,
        go_backwards=False,
        stateful=False,
        unroll=False,
        zero_output_for_mask=False,
        input_projection="auto",
        implementation="auto",
        **kwargs,
    ):
        if input_projection not in ("auto", "hoisted", "per_step"):
            raise ValueError(f"`input_projection` must be 'auto', 'hoisted' or 'per_step', got {input_projection!r}.")
        cell_kwargs = {k: kwargs.pop(k) for k in list(kwargs) if k not in _LAYER_KWARGS}
        if isinstance(implementation, int):  # Keras' own `implementation` belongs to the cell
            cell_kwargs["implementation"], implementation = implementation, "auto"
        if implementation not in fused.IMPLEMENTATIONS:
            raise ValueError(f"`implementation` must be one of {fused.IMPLEMENTATIONS}, got {implementation!r}.")
        cell = self.cell_class(
            units,
            dtype=kwargs.get("dtype"),
            trainable=kwargs.get("trainable", True),
            name=self.cell_name,
            **cell_kwargs,
        )
        super().__init__(
            cell,
            return_sequences=return_sequences,
            return_state=return_state,
            go_backwards=go_backwards,
            stateful=stateful,
            unroll=unroll,
            zero_output_for_mask=zero_output_for_mask,
            **kwargs,
        )
        self.input_spec = keras.layers.InputSpec(ndim=3)
        self.input_projection = input_projection
        self.implementation = implementation

    @property
    def units(self):
        return self.cell.units

    def enable_lora(self, rank, lora_alpha=None, a_initializer="he_uniform", b_initializer="zeros"):
        """LoRA on the cell's kernels (`tfrnn.layers.lora.LoraKernels.enable_lora`); the layer must be built."""
        self.cell.enable_lora(rank, lora_alpha, a_initializer, b_initializer)

    @property
    def variables(self):
        """Keras' list plus, when stateful, the states. Keras leaves a stateful RNN's states out
        of its tracked variables, so a JAX step (which threads `variables` through its pure
        function) would drop their updates and start every batch from zeros; listed here like
        seed generator states, they carry over. `weights`, what is saved and copied, is unchanged."""
        return super().variables + ([] if self.states is None else keras.tree.flatten(self.states))

    def fused_unavailable(self):
        """Why the backend's fused kernel cannot run this layer here, or None when it can."""
        backend = keras.backend.backend()
        return fused.unavailable_reason(self.fused_kind, self.cell, self.unroll, backend, fused.on_gpu())

    def uses_fused(self):
        """Whether this layer runs on the fused kernel (`implementation`); a mask that is not
        right-padded still takes the equations, batch by batch.

        Raises:
            ValueError: `implementation="fused"` where the kernel cannot run the layer.
        """
        if self.implementation == "equations":
            return False
        reason = self.fused_unavailable()
        if reason and self.implementation == "fused":
            raise ValueError(f"{self.name}: implementation='fused' is not possible here: {reason}.")
        return reason is None

    def build(self, sequences_shape, initial_state_shape=None):
        super().build(sequences_shape, initial_state_shape)
        if self.uses_fused() and keras.backend.backend() == "tensorflow":
            self.supports_jit = False  # the cuDNN op has no XLA kernel (keras.layers.LSTM does the same)

    def hoists_projection(self):
        """Whether this layer computes the input projection for all steps before the loop."""
        if self.input_projection == "auto":
            return on_accelerator()
        return self.input_projection == "hoisted"

    def inner_loop(self, sequences, initial_state, mask, training=False):
        with contextlib.ExitStack() as stack:
            for cell in self.cell._flatten_layers():  # the cell, or a wrapper and its base cell
                if isinstance(cell, ProjectedCell):
                    stack.enter_context(cell.dropped_weights(training))
            return self._loop(sequences, initial_state, mask, training)

    def _loop(self, sequences, initial_state, mask, training):
        if self.uses_fused():
            equations = functools.partial(self._equations, sequences, initial_state, mask, training)
            return fused.run(self, sequences, initial_state, mask, training, equations)
        return self._equations(sequences, initial_state, mask, training)

    def _equations(self, sequences, initial_state, mask, training):
        if not self.hoists_projection():
            return super().inner_loop(sequences, initial_state, mask, training)  # cell.call per step
        if keras.tree.is_nested(mask):
            mask = mask[0]
        projected = self.cell.project_inputs(sequences, training)  # (batch, time, gates*units)

        def step(z_t, states):
            if keras.backend.backend() == "torch" and self.stateful:
                states = [ops.copy(s) for s in states]  # keep autograd away from in-place updates
            return self.cell.recurrent_step(z_t, list(states), training)

        return backend_rnn(
            step,
            projected,
            list(initial_state),
            go_backwards=self.go_backwards,
            mask=mask,
            unroll=self.unroll,
            input_length=sequences.shape[1],
            zero_output_for_mask=self.zero_output_for_mask,
            return_all_outputs=self.return_sequences,
        )

    def call(self, sequences, initial_state=None, mask=None, training=False):
        return super().call(sequences, initial_state=initial_state, mask=mask, training=training)

    def get_config(self):
        config = {**super().get_config(), "input_projection": self.input_projection}
        # Keras' int (one dropout mask per gate) is the cell's; it implies "auto"
        keras_mode = self.implementation == "auto" and getattr(self.cell, "implementation", None) == 1
        config["implementation"] = 1 if keras_mode else self.implementation
        del config["cell"]
        cell_config = self.cell.get_config()
        for key in ("name", "trainable", "dtype"):
            cell_config.pop(key, None)
        return {**config, **cell_config}

    @classmethod
    def from_config(cls, config):
        return cls(**config)
