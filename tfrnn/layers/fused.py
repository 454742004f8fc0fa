"""Fused recurrent kernels (cuDNN and the like) behind tfrnn's LSTM and GRU layers.

A fused kernel runs a whole LSTM or GRU over a batch in one call, given each sequence's length,
with tfrnn's weights repacked into its layout:

- tensorflow: Keras' own cuDNN call (`keras.src.backend.lstm` / `gru`: `CudnnRNNV3` with
  sequence lengths); GPU only.
- jax: `jax.experimental.rnn.lstm` (cuDNN, with `seq_lengths`); GPU only, LSTM only (JAX has no
  fused GRU), float32 only (its cuDNN call is built for float32).
- torch: `torch.nn.LSTM` / `torch.nn.GRU` over packed sequences (`torch.func.functional_call`
  with the layer's weights): cuDNN on a CUDA GPU, PyTorch's fused CPU kernel elsewhere.

Padding: a right-padded mask (`[1, 1, 1, 0, 0]`) becomes per-sequence lengths, so masked batches
stay on the fused path, which Keras' JAX and PyTorch backends do not do (they leave it for any
mask). A mask that is left-padded, has holes or masks a whole sequence cannot be expressed as
lengths: `keras.ops.cond` sends such a batch through the equations instead, with the same weights.
`go_backwards` reverses each sequence within its length before the kernel and the outputs after
it, as Keras' TensorFlow backend does, so the result is the equations' to rounding.

A `tfrnn.layers.Bidirectional` over two such layers makes one bidirectional call where the
backend has one (`run_bidirectional`: JAX's LSTM, PyTorch's LSTM and GRU).

Only `keras` is imported at module level; a backend's own library is imported inside its kernel.
"""

import functools

import keras
from keras import ops

IMPLEMENTATIONS = ("auto", "fused", "equations")
FUSED_DTYPES = ("float32", "bfloat16", "float16")
# Backend -> the cell kinds its fused kernel runs, in one direction and in both at once.
FUSED_KINDS = {"tensorflow": ("lstm", "gru"), "jax": ("lstm",), "torch": ("lstm", "gru")}
BIDIRECTIONAL_KINDS = {"jax": ("lstm",), "torch": ("lstm", "gru")}
# PyTorch orders a GRU's gates (r, z, n); Keras (z, r, h).
_TORCH_GRU_BLOCKS = (1, 0, 2)


def unavailable_reason(kind, cell, unroll, backend, on_gpu):
    """Why the fused kernel cannot run a layer, or None when it can.

    Args:
        kind: str or None. "lstm", "gru", or None for a cell without a fused kernel.
        cell: ProjectedCell. The layer's cell (its activations, dropout, bias, dtype).
        unroll: bool. The layer's `unroll`.
        backend: str. The Keras backend.
        on_gpu: bool. Whether the backend computes on a CUDA GPU.

    Returns:
        str or None. One short reason, naming the setting that rules the kernel out.
    """
    if kind is None:
        return f"{type(cell).__name__} has no fused kernel (only LSTM and GRU do)"
    if kind not in FUSED_KINDS.get(backend, ()):
        return f"the {backend} backend has no fused {kind.upper()} kernel"
    if backend != "torch" and not on_gpu:
        return f"the {backend} backend's fused kernel needs a CUDA GPU (cuDNN)"
    if cell.activation is not keras.activations.tanh:
        return "activation is not tanh"
    if cell.recurrent_activation is not keras.activations.sigmoid:
        return "recurrent_activation is not sigmoid"
    if cell.recurrent_dropout:
        return "recurrent_dropout > 0 (the kernel has no per-step masks; weight_dropout works)"
    if cell.dropout and cell.implementation == 1:
        return "implementation=1 draws one input dropout mask per gate"
    if unroll:
        return "unroll=True"
    if not cell.use_bias:
        return "use_bias=False"
    if kind == "gru" and not cell.reset_after:
        return "reset_after=False (cuDNN's GRU applies the reset gate after the matmul)"
    dtype = cell.compute_dtype
    if dtype not in FUSED_DTYPES or (backend == "jax" and dtype != "float32"):
        return f"compute dtype {dtype} (the {backend} kernel takes {'float32' if backend == 'jax' else FUSED_DTYPES})"
    return None


@functools.cache
def on_gpu():
    """Whether the Keras backend computes on a CUDA GPU."""
    backend = keras.backend.backend()
    if backend == "torch":
        import torch

        return torch.cuda.is_available() and torch.backends.cudnn.is_available()
    if backend == "jax":
        import jax

        return jax.default_backend() == "gpu"
    return any("gpu" in device.lower() for device in keras.distribution.list_devices())


def right_padded_lengths(mask):
    """Each sequence's length, and whether the mask is exactly those lengths right-padded.

    Args:
        mask: tensor. `(batch, time)` booleans.

    Returns:
        `(lengths, ok)`: int32 `(batch,)`, and a boolean scalar that is True when every row is
        `length` ones then zeros, with `length >= 1`.
    """
    lengths = ops.sum(ops.cast(mask, "int32"), axis=1)  # (batch,)
    steps = ops.arange(ops.shape(mask)[1], dtype="int32")[None, :]  # (1, time)
    ok = ops.logical_and(
        ops.all(ops.equal(ops.cast(mask, "bool"), steps < lengths[:, None])),
        ops.all(lengths > 0),
    )
    return lengths, ok


def reverse_within_lengths(x, lengths):
    """Reverses the first `lengths[b]` steps of each sequence and leaves the padding in place.

    Args:
        x: tensor. `(batch, time, dim)`.
        lengths: tensor. int32 `(batch,)`.

    Returns:
        Tensor `(batch, time, dim)`.
    """
    steps = ops.arange(ops.shape(x)[1], dtype="int32")[None, :]  # (1, time)
    lengths = lengths[:, None]  # (batch, 1)
    order = ops.where(steps < lengths, lengths - 1 - steps, steps)  # (batch, time)
    return ops.take_along_axis(x, ops.broadcast_to(order[:, :, None], ops.shape(x)), axis=1)


def run(layer, sequences, initial_state, mask, training, equations):
    """The layer's loop on the fused kernel, with the equations' results.

    Args:
        layer: ProjectedRNN. An LSTM or GRU layer for which `unavailable_reason` is None.
        sequences: tensor. `(batch, time, input_dim)`.
        initial_state: list of tensors. Each `(batch, units)`.
        mask: tensor or None. `(batch, time)` booleans.
        training: bool. Applies input dropout (and DropConnect, through the cell) when True.
        equations: callable. `() -> (last_output, outputs, states)`, the equations' loop, for a
            mask that is not right-padded.

    Returns:
        `(last_output, outputs, states)` as `keras.layers.RNN.inner_loop` returns them: outputs
        `(batch, time, units)` with `return_sequences`, else `(batch, 1, units)`.
    """
    if keras.tree.is_nested(mask):
        mask = mask[0]

    def fallback():  # both branches of the cond must return the same shapes
        last_output, outputs, states = equations()
        outputs = outputs if layer.return_sequences else ops.expand_dims(last_output, 1)
        return last_output, outputs, list(states)

    try:
        if mask is None:
            batch = ops.shape(sequences)[0]
            lengths = ops.full((batch,), ops.shape(sequences)[1], dtype="int32")
            return _run_fused(layer, sequences, initial_state, lengths, training)
        lengths, ok = right_padded_lengths(mask)
        return ops.cond(ok, lambda: _run_fused(layer, sequences, initial_state, lengths, training), fallback)
    except NotImplementedError:  # Keras' TensorFlow cuDNN call found no cuDNN op on this device
        if layer.implementation == "fused":
            raise
        return fallback()


def run_bidirectional(wrapper, sequences, mask, two_calls):
    """Both directions of a `tfrnn.layers.Bidirectional` in one call of the backend's kernel.

    Args:
        wrapper: Bidirectional. Over two layers that `bidirectional_unavailable` accepts.
        sequences: tensor. `(batch, time, input_dim)`.
        mask: tensor or None. `(batch, time)` booleans.
        two_calls: callable. `() -> (y, y_rev, states)`, Keras' way (one call per direction), for a
            mask that is not right-padded.

    Returns:
        `(y, y_rev, states)`: each direction's outputs, the backward one in the original time order
        (`(batch, time, units)` with return_sequences, else `(batch, units)`), with zeros past each
        sequence's end as Keras' Bidirectional has them, and with return_state the final states,
        forward then backward (else an empty list).
    """
    if keras.tree.is_nested(mask):
        mask = mask[0]
    if mask is None:
        lengths = ops.full((ops.shape(sequences)[0],), ops.shape(sequences)[1], dtype="int32")
        return _run_bidirectional(wrapper, sequences, lengths)
    lengths, ok = right_padded_lengths(mask)
    return ops.cond(ok, lambda: _run_bidirectional(wrapper, sequences, lengths), two_calls)


def _run_bidirectional(wrapper, x, lengths):
    layers = (wrapper.forward_layer, wrapper.backward_layer)
    batch = ops.shape(x)[0]
    states = [[ops.zeros((batch, layer.cell.units), x.dtype)] * layer.cell.state_count for layer in layers]
    kernel = KERNELS[keras.backend.backend()]
    cells = [layer.cell for layer in layers]
    y, states = kernel(layers[0].fused_kind, cells, x, states, lengths, wrapper.return_state)
    units = layers[0].cell.units
    if wrapper.return_sequences:  # (batch, time, units) each; the kernel zeroes the padding
        y, y_rev = y[..., :units], y[..., units:]
    else:  # each direction's output after its whole sweep
        y, y_rev = states[0][0], states[1][0]
    return y, y_rev, (states[0] + states[1]) if wrapper.return_state else []


def bidirectional_unavailable(forward, backward, backend, training, mask=None):
    """Why a `Bidirectional` over `forward` and `backward` cannot make one fused call, or None.

    Args:
        forward: layer. The forward layer.
        backward: layer. The backward layer (`go_backwards=True`).
        backend: str. The Keras backend.
        training: bool. Whether the call trains (each direction draws its own dropout masks).
        mask: tensor or None. The call's mask.

    Returns:
        str or None.
    """
    kinds = {getattr(layer, "fused_kind", None) for layer in (forward, backward)}
    if len(kinds) != 1 or None in kinds:
        return "the two layers are not both tfrnn LSTMs or both tfrnn GRUs"
    (kind,) = kinds
    if kind not in BIDIRECTIONAL_KINDS.get(backend, ()):
        return f"the {backend} backend has no fused bidirectional {kind.upper()} kernel"
    for layer in (forward, backward):
        if layer.implementation == "equations" or layer.fused_unavailable():
            return f"{layer.name} does not run on the fused kernel"
        if layer.stateful:
            return f"{layer.name} is stateful"
        if training and layer.cell.dropout:
            return "input dropout draws one mask per direction"
        if training and layer.cell.weight_dropout:
            return "each direction draws its own DropConnect mask in its own call"
        if mask is not None and (layer.cell.dropout or layer.cell.weight_dropout):
            # the fallback for a bad mask would draw random masks inside the cond (a JAX trace leak)
            return "a mask with dropout on the layers"
    if forward.cell.units != backward.cell.units or forward.go_backwards or not backward.go_backwards:
        return "the layers are not one forward and one backward layer of the same size"
    return None


def _run_fused(layer, sequences, initial_state, lengths, training):
    cell = layer.cell
    x = sequences
    input_masks = cell.input_masks(x, training)
    if input_masks:
        x = x * ops.expand_dims(input_masks[0], 1)  # one mask per sequence, as the equations use it
    if layer.go_backwards:
        x = reverse_within_lengths(x, lengths)
    kernel = KERNELS[keras.backend.backend()]
    all_states = layer.return_state or layer.stateful
    y, [states] = kernel(
        layer.fused_kind, [cell], x, [list(initial_state)], lengths, all_states
    )  # (batch, time, units)
    last_output = states[0]  # h at each sequence's last step
    if not layer.return_sequences:
        return last_output, ops.expand_dims(last_output, 1), states
    steps = ops.arange(ops.shape(x)[1], dtype="int32")[None, :, None]  # (1, time, 1)
    if layer.go_backwards:  # the equations' order: padding first, then the reversed sequence
        y = ops.flip(reverse_within_lengths(y, lengths), axis=1)
        if not layer.zero_output_for_mask and keras.backend.backend() == "jax":
            # JAX's loop repeats the state (the initial h) at leading padded steps; the others emit zeros
            first = ops.shape(x)[1] - lengths[:, None, None]  # (batch, 1, 1)
            y = ops.where(steps >= first, y, ops.expand_dims(initial_state[0], 1))
    elif not layer.zero_output_for_mask:  # past its end, a sequence repeats its last output
        y = ops.where(steps < lengths[:, None, None], y, ops.expand_dims(last_output, 1))
    return last_output, y, states


def _keras_tensorflow(kind, cell, x, states, lengths):
    """Keras' TensorFlow cuDNN call, on a right-padded mask built from the lengths."""
    from keras.src.backend import gru, lstm

    mask = ops.arange(ops.shape(x)[1], dtype="int32")[None, :] < lengths[:, None]
    common = dict(
        mask=mask,
        kernel=cell.effective("kernel"),
        recurrent_kernel=cell.effective("recurrent_kernel"),
        bias=cell.bias,
        activation=cell.activation,
        recurrent_activation=cell.recurrent_activation,
        return_sequences=True,
    )
    if kind == "lstm":
        _, y, new_states = lstm(x, states[0], states[1], **common)
    else:
        _, y, new_states = gru(x, states[0], reset_after=True, **common)
    return y, list(new_states)


def jax_lstm_weights(kernel, recurrent_kernel, bias):
    """Keras' LSTM weights as `jax.experimental.rnn`'s flat cuDNN vector.

    Args:
        kernel: array. `(input_dim, 4*units)`, gates (i, f, c, o), cuDNN's (i, f, g, o) order.
        recurrent_kernel: array. `(units, 4*units)`.
        bias: array. `(4*units,)`: cuDNN's input bias; its recurrent bias is zero.

    Returns:
        Array `(4*units*(input_dim + units + 2),)`: W_ih, W_hh (each transposed), b_ih, b_hh.
    """
    import jax.numpy as jnp

    bias = jnp.asarray(bias)
    parts = [kernel.T.ravel(), recurrent_kernel.T.ravel(), bias, jnp.zeros_like(bias)]
    return jnp.concatenate(parts)


def jax_cudnn_lstm(x, h_0, c_0, weights, seq_lengths, input_size, hidden_size, bidirectional=False):
    """`jax.experimental.rnn.lstm`, one layer (the tests swap in its reference)."""
    from jax.experimental import rnn

    return rnn.lstm(x, h_0, c_0, weights, seq_lengths, input_size, hidden_size, 1, 0.0, bidirectional)


def _jax(kind, cells, x, states, lengths, all_states=True):
    """One direction (one cell) or both (two cells: forward, backward); states `[h, c]` per cell."""
    matrices, biases = [], []
    for cell in cells:
        kernel = ops.convert_to_tensor(cell.effective("kernel"))
        packed = jax_lstm_weights(kernel, ops.convert_to_tensor(cell.effective("recurrent_kernel")), cell.bias)
        split = packed.shape[0] - 8 * cell.units
        matrices.append(packed[:split])  # cuDNN's bidirectional layout: all matrices, then all biases
        biases.append(packed[split:])
    h_0 = ops.stack([s[0] for s in states])  # (directions, batch, units)
    c_0 = ops.stack([s[1] for s in states])
    weights = ops.concatenate(matrices + biases)
    y, h_n, c_n = jax_cudnn_lstm(x, h_0, c_0, weights, lengths, x.shape[-1], cells[0].units, len(cells) == 2)
    return y, [[h_n[d], c_n[d]] for d in range(len(cells))]


def torch_rnn_weights(kind, kernel, recurrent_kernel, bias):
    """Keras' LSTM or GRU weights as `torch.nn.LSTM` / `GRU` parameters of layer 0.

    Args:
        kind: str. "lstm" or "gru".
        kernel: tensor. `(input_dim, gates*units)`.
        recurrent_kernel: tensor. `(units, gates*units)`.
        bias: tensor. LSTM `(4*units,)`; GRU (reset_after) `(2, 3*units)`: input and recurrent rows.

    Returns:
        dict of `weight_ih_l0` `(gates*units, input_dim)`, `weight_hh_l0`, `bias_ih_l0`,
        `bias_hh_l0`, GRU blocks reordered from Keras' (z, r, h) to PyTorch's (r, z, n).
    """
    if kind == "lstm":  # the same (i, f, g, o) order; PyTorch's second bias is zero
        b_ih, b_hh = bias, ops.zeros_like(bias)
    else:
        kernel, recurrent_kernel = (_torch_gru_order(w, axis=1) for w in (kernel, recurrent_kernel))
        b_ih, b_hh = (_torch_gru_order(b, axis=0) for b in (bias[0], bias[1]))
    return {
        "weight_ih_l0": ops.transpose(kernel),
        "weight_hh_l0": ops.transpose(recurrent_kernel),
        "bias_ih_l0": b_ih,
        "bias_hh_l0": b_hh,
    }


def _torch_gru_order(weight, axis):
    blocks = ops.split(weight, 3, axis=axis)
    return ops.concatenate([blocks[i] for i in _TORCH_GRU_BLOCKS], axis=axis)


@functools.cache
def _torch_module(kind, input_size, units, bidirectional):
    """An `nn.LSTM` / `nn.GRU` shell whose parameters `functional_call` replaces."""
    import torch

    module_class = torch.nn.LSTM if kind == "lstm" else torch.nn.GRU
    return module_class(input_size, units, batch_first=True, bidirectional=bidirectional, device="meta")


def _torch(kind, cells, x, states, lengths, all_states=True):
    """One direction (one cell) or both (two cells: forward, backward); states per cell.

    On a CPU, PyTorch runs packed sequences step by step (about 4.5x slower than its fused kernel
    over the padded batch; docs/benchmarks.md, "Fused kernels"). When only `h` is needed (`all_states`
    False), each direction there runs over the whole padded batch instead, and `h` at each
    sequence's end is read from the outputs: the steps past an end change nothing before it.
    An LSTM's final cell state is then a placeholder that no caller reads.
    """
    if not (x.is_cuda or all_states):
        return _torch_padded(kind, cells, x, states, lengths)
    from torch.nn.utils import rnn as torch_rnn

    packed = torch_rnn.pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
    out, h_n = _torch_call(kind, cells, packed, states, x)
    y, _ = torch_rnn.pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
    h_n = h_n if kind == "lstm" else (h_n,)
    return y, [[h[d] for h in h_n] for d in range(len(cells))]


def _torch_call(kind, cells, inputs, states, x):
    """Runs `nn.LSTM` / `nn.GRU` with the cells' weights on `inputs` (a tensor or packed)."""
    import torch

    weights = {}
    for cell, suffix in zip(cells, ("", "_reverse")):
        packed = torch_rnn_weights(kind, cell.effective("kernel"), cell.effective("recurrent_kernel"), cell.bias)
        weights.update({name + suffix: ops.cast(w, x.dtype).contiguous() for name, w in packed.items()})
    module = _torch_module(kind, x.shape[-1], cells[0].units, len(cells) == 2)
    h_0 = tuple(ops.stack([s[i] for s in states]) for i in range(len(states[0])))  # (directions, batch, units)
    return torch.func.functional_call(module, weights, (inputs, h_0 if kind == "lstm" else h_0[0]))


def _torch_padded(kind, cells, x, states, lengths):
    steps = ops.arange(x.shape[1], dtype="int32")[None, :, None]  # (1, time, 1)
    valid = steps < ops.cast(lengths, "int32")[:, None, None]  # (batch, time, 1)
    last = ops.expand_dims(ops.cast(lengths, "int32") - 1, 1)  # (batch, 1)
    ys, final = [], []
    for cell, direction_states, backwards in zip(cells, states, (False, True)):
        inputs = reverse_within_lengths(x, lengths) if backwards else x
        y, _ = _torch_call(kind, [cell], inputs, [direction_states], x)  # (batch, time, units)
        y = ops.where(valid, y, 0.0)
        h = ops.take_along_axis(y, ops.broadcast_to(last[:, :, None], (y.shape[0], 1, y.shape[2])), axis=1)[:, 0]
        ys.append(reverse_within_lengths(y, lengths) if backwards else y)
        # An LSTM's c is not in the outputs; the layer neither returns nor keeps it (all_states False).
        final.append([h] + [ops.zeros_like(h)] * (len(direction_states) - 1))
    return ops.concatenate(ys, axis=-1), final


def _keras_tensorflow_one_direction(kind, cells, x, states, lengths, all_states=True):
    y, new_states = _keras_tensorflow(kind, cells[0], x, states[0], lengths)
    return y, [new_states]


# Backend -> kernel(kind, cells, x, states per cell, lengths, all_states) -> (y, final states per
# cell); `all_states` False: only each cell's h is needed.
KERNELS = {"tensorflow": _keras_tensorflow_one_direction, "jax": _jax, "torch": _torch}
