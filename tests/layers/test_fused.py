"""The fused-kernel path of tfrnn's LSTM and GRU (`tfrnn.layers.fused`).

- The dispatch decision for every configuration, as a table.
- The weight packing, against each backend's own reference: `jax.experimental.rnn.lstm_ref` with
  `unpack_lstm_weights` (ragged `seq_lengths` included) and PyTorch's `nn.LSTM` / `nn.GRU` on CPU.
- The layers on the fused path against the equations path, to 1e-5: outputs, final states and
  gradients, with masks of every kind. PyTorch runs its real kernel here (`nn.LSTM` runs on CPU);
  JAX runs the layer's whole fused path with `jax.experimental.rnn.lstm_ref` in place of the cuDNN
  call, which exists only on a GPU; TensorFlow's kernel (Keras' cuDNN call) needs a GPU too.
"""

import keras
import numpy as np
import pytest

from tests.layers.gradients import value_and_grads
from tfrnn import layers
from tfrnn.layers import fused

BACKEND = keras.backend.backend()
RNG = np.random.default_rng(0)
X = RNG.normal(size=(4, 7, 5)).astype("float32")
MASKS = {
    "none": None,
    "right_padded": np.array([[1] * 7, [1] * 4 + [0] * 3, [1] + [0] * 6, [1] * 6 + [0]], bool),
    "left_padded": np.array([[1] * 7, [0] * 3 + [1] * 4, [0] * 6 + [1], [1] * 7], bool),
    "holed": np.array([[1] * 7, [1, 0, 1, 1, 0, 0, 0], [1] * 7, [1] * 7], bool),
    "one_fully_masked": np.array([[1] * 7, [0] * 7, [1] * 3 + [0] * 4, [1] * 7], bool),
}
LAYERS = {"lstm": layers.LSTM, "gru": layers.GRU}


def _cell(kind, **kwargs):
    cell = {"lstm": layers.LSTMCell, "gru": layers.GRUCell}[kind](4, **kwargs)
    cell.build((None, 5))
    return cell


# (kind, cell settings, unroll, backend, on a GPU, a word of the reason or None when the kernel runs)
DISPATCH = [
    ("lstm", {}, False, "jax", True, None),
    ("lstm", {}, False, "tensorflow", True, None),
    ("lstm", {}, False, "torch", True, None),
    ("lstm", {}, False, "torch", False, None),  # PyTorch's fused CPU kernel
    ("gru", {}, False, "torch", False, None),
    ("gru", {}, False, "tensorflow", True, None),
    ("lstm", {"dropout": 0.2, "weight_dropout": 0.3, "lora_rank": 2}, False, "jax", True, None),
    ("lstm", {}, False, "jax", False, "CUDA GPU"),
    ("lstm", {}, False, "tensorflow", False, "CUDA GPU"),
    ("gru", {}, False, "jax", True, "no fused GRU"),
    ("lstm", {}, False, "numpy", True, "no fused LSTM"),
    (None, {}, False, "torch", True, "only LSTM and GRU"),
    ("lstm", {"activation": "relu"}, False, "torch", True, "activation"),
    ("gru", {"recurrent_activation": "hard_sigmoid"}, False, "torch", True, "recurrent_activation"),
    ("lstm", {"recurrent_dropout": 0.1}, False, "torch", True, "recurrent_dropout"),
    ("gru", {"dropout": 0.1, "implementation": 1}, False, "torch", True, "implementation=1"),
    ("lstm", {}, True, "jax", True, "unroll"),
    ("gru", {"use_bias": False}, False, "tensorflow", True, "use_bias"),
    ("gru", {"reset_after": False}, False, "tensorflow", True, "reset_after"),
    ("lstm", {"dtype": "mixed_bfloat16"}, False, "jax", True, "bfloat16"),
    ("lstm", {"dtype": "mixed_bfloat16"}, False, "torch", True, None),
    ("gru", {"dtype": "mixed_float16"}, False, "tensorflow", True, None),
    ("lstm", {"dtype": "float64"}, False, "torch", True, "float64"),
]


@pytest.mark.parametrize(("kind", "settings", "unroll", "backend", "gpu", "reason"), DISPATCH)
def test_dispatch_table(kind, settings, unroll, backend, gpu, reason):
    cell = _cell(kind or "lstm", **settings)
    got = fused.unavailable_reason(kind, cell, unroll, backend, gpu)
    if reason is None:
        assert got is None
    else:
        assert reason in got


def _keras_lstm_weights(units=4, input_dim=5):
    return [
        RNG.normal(size=shape).astype("float32") for shape in [(input_dim, 4 * units), (units, 4 * units), (4 * units,)]
    ]


def _equations_layer(kind, weights, **options):
    layer = LAYERS[kind](4, implementation="equations", return_sequences=True, return_state=True, **options)
    layer.build(X.shape)
    layer.set_weights(weights)
    return layer


def _numpy(values):
    return [keras.ops.convert_to_numpy(v) for v in values]


def test_jax_packing_matches_lstm_ref_with_ragged_lengths():
    jnp = pytest.importorskip("jax.numpy")
    rnn = pytest.importorskip("jax.experimental.rnn")
    kernel, recurrent_kernel, bias = _keras_lstm_weights()
    weights = fused.jax_lstm_weights(jnp.asarray(kernel), jnp.asarray(recurrent_kernel), jnp.asarray(bias))
    assert weights.shape == (rnn.get_num_params_in_lstm(5, 4, 1, False),)
    mask = MASKS["right_padded"]
    lengths = jnp.asarray(mask.sum(1), dtype="int32")
    zeros = jnp.zeros((1, 4, 4))
    unpacked = rnn.unpack_lstm_weights(weights, 5, 4, 1, False)
    y, h_n, c_n = rnn.lstm_ref(jnp.asarray(X), zeros, zeros, *unpacked, lengths, 5, 4, 1, 0.0, False)

    out, h, c = _numpy(
        _equations_layer("lstm", [kernel, recurrent_kernel, bias], zero_output_for_mask=True)(X, mask=mask)
    )
    np.testing.assert_allclose(np.asarray(y), out, atol=1e-5)
    np.testing.assert_allclose(np.asarray(h_n[0]), h, atol=1e-5)
    np.testing.assert_allclose(np.asarray(c_n[0]), c, atol=1e-5)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_torch_packing_matches_nn_module(kind):
    torch = pytest.importorskip("torch")
    if kind == "lstm":
        keras_weights = _keras_lstm_weights()
    else:
        keras_weights = [RNG.normal(size=s).astype("float32") for s in [(5, 12), (4, 12), (2, 12)]]
    packed = fused.torch_rnn_weights(kind, *(keras.ops.convert_to_tensor(w) for w in keras_weights))
    module = (torch.nn.LSTM if kind == "lstm" else torch.nn.GRU)(5, 4, batch_first=True)
    module.load_state_dict(
        {name: torch.from_numpy(np.array(keras.ops.convert_to_numpy(w))) for name, w in packed.items()}
    )
    with torch.no_grad():
        y, h_n = module(torch.from_numpy(X))
    expected = _numpy(_equations_layer(kind, keras_weights)(X))
    np.testing.assert_allclose(y.numpy(), expected[0], atol=1e-5)
    final = [h_n[0][0], h_n[1][0]] if kind == "lstm" else [h_n[0]]
    for got, want in zip(final, expected[1:]):
        np.testing.assert_allclose(got.numpy(), want, atol=1e-5)


@pytest.fixture
def fused_here(monkeypatch):
    """Puts this backend on its fused path on this CPU: PyTorch's real kernel; for JAX, the
    reference in place of the cuDNN call. TensorFlow's kernel needs a GPU."""
    if BACKEND == "jax":
        from jax.experimental import rnn

        def lstm_ref(x, h_0, c_0, weights, seq_lengths, input_size, hidden_size, bidirectional=False):
            unpacked = rnn.unpack_lstm_weights(weights, input_size, hidden_size, 1, bidirectional)
            return rnn.lstm_ref(x, h_0, c_0, *unpacked, seq_lengths, input_size, hidden_size, 1, 0.0, bidirectional)

        monkeypatch.setattr(fused, "jax_cudnn_lstm", lstm_ref)
        monkeypatch.setattr(fused, "on_gpu", lambda: True)
    elif BACKEND != "torch":
        pytest.skip(f"the {BACKEND} backend's fused kernel runs only on a CUDA GPU")


def _pair(kind, **options):
    """The same layer twice, on the fused path and on the equations, with the same weights."""
    if BACKEND == "jax" and kind == "gru":
        pytest.skip("JAX has no fused GRU kernel (dispatch table above)")
    ours = LAYERS[kind](4, implementation="fused", seed=3, **options)
    reference = LAYERS[kind](4, implementation="equations", seed=3, **options)
    for layer in (ours, reference):
        layer.build(X.shape)
    reference.set_weights(ours.get_weights())
    return ours, reference


def _assert_same(ours, reference, mask, training=False):
    def outputs(layer):
        result = layer(X, mask=mask, training=training)
        return _numpy(keras.tree.flatten(result))

    got_all, want_all = outputs(ours), outputs(reference)
    assert len(got_all) == len(want_all)
    for got, want in zip(got_all, want_all):
        np.testing.assert_allclose(got, want, atol=1e-5)


OPTIONS = {
    "last": {},
    "sequences_state": {"return_sequences": True, "return_state": True},
    "zero_output": {"return_sequences": True, "zero_output_for_mask": True},
    "backwards": {"return_sequences": True, "return_state": True, "go_backwards": True},
    "backwards_last": {"go_backwards": True},
}


@pytest.mark.parametrize("mask", list(MASKS))
@pytest.mark.parametrize("options", list(OPTIONS))
@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_fused_equals_equations(fused_here, kind, options, mask):
    ours, reference = _pair(kind, **OPTIONS[options])
    assert ours.uses_fused()
    _assert_same(ours, reference, MASKS[mask])


@pytest.mark.parametrize("mask", ["none", "right_padded", "holed"])
@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_fused_gradients_equal_equations(fused_here, kind, mask):
    ours, reference = _pair(kind, return_sequences=True, go_backwards=True)
    mask = MASKS[mask]

    def loss(outputs):
        return keras.ops.sum(keras.ops.sin(3.0 * outputs))  # every output and step counts

    ours, reference = _Masked(ours, mask), _Masked(reference, mask)
    for layer in (ours, reference):
        layer(X)  # built, for JAX's stateless call
    value, grads = value_and_grads(ours, loss, X)
    want_value, want_grads = value_and_grads(reference, loss, X)
    assert value == pytest.approx(want_value, abs=1e-4)
    for got, want in zip(grads, want_grads):
        np.testing.assert_allclose(got, want, atol=1e-5)


class _Masked(keras.layers.Layer):
    """Calls a layer with a fixed mask (for `value_and_grads`, which passes the input only)."""

    def __init__(self, layer, mask):
        super().__init__()
        self.layer, self.mask = layer, mask

    def call(self, x):
        return self.layer(x, mask=self.mask)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_dropout_dropconnect_and_lora_take_the_fused_path(fused_here, kind):
    """Training with input dropout and DropConnect (one mask per call, drawn as the equations
    draw it) and a LoRA-adapted kernel: the fused kernel gets the same effective weights."""
    ours, reference = _pair(kind, return_sequences=True, dropout=0.3, weight_dropout=0.4)
    ours.enable_lora(2)
    reference.enable_lora(2)
    ours.cell._lora["kernel"][1].assign(RNG.normal(size=ours.cell._lora["kernel"][1].shape))
    reference.set_weights(ours.get_weights())
    assert ours.uses_fused()
    _assert_same(ours, reference, MASKS["right_padded"], training=True)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_initial_state_backwards(fused_here, kind):
    """A given initial state, read backwards over a right-padded batch: the leading padded steps
    hold what this backend's equations put there."""
    ours, reference = _pair(kind, return_sequences=True, return_state=True, go_backwards=True)
    states = (
        [keras.ops.convert_to_tensor(RNG.normal(size=(4, 4)).astype("float32")) for _ in ours.cell.state_size]
        if kind == "lstm"
        else [keras.ops.convert_to_tensor(RNG.normal(size=(4, 4)).astype("float32"))]
    )
    for got, want in zip(
        _numpy(keras.tree.flatten(ours(X, initial_state=states, mask=MASKS["right_padded"]))),
        _numpy(keras.tree.flatten(reference(X, initial_state=states, mask=MASKS["right_padded"]))),
    ):
        np.testing.assert_allclose(got, want, atol=1e-5)


def test_tensorflow_traces_an_unknown_time_dimension(monkeypatch):
    """Bucketed batches and the export signature leave the time dimension unknown in the graph;
    the fused path's lengths, masks and reversals take it as a tensor."""
    if BACKEND != "tensorflow":
        pytest.skip("TensorFlow graphs with an unknown time dimension")
    import tensorflow as tf

    def kernel(kind, cells, x, states, lengths, all_states=True):  # the shapes of Keras' cuDNN call
        return keras.ops.matmul(x, keras.ops.zeros((x.shape[-1], cells[0].units))), states  # (batch, time, units)

    monkeypatch.setattr(fused, "on_gpu", lambda: True)
    monkeypatch.setitem(fused.KERNELS, "tensorflow", kernel)
    layer = layers.LSTM(4, return_sequences=True, go_backwards=True)
    layer.build((None, None, 5))
    assert layer.uses_fused() and not layer.supports_jit
    call = tf.function(lambda x, m: layer(x, mask=m))
    spec = [tf.TensorSpec([None, None, 5]), tf.TensorSpec([None, None], tf.bool)]
    assert call.get_concrete_function(*spec).outputs[0].shape.as_list() == [None, None, 4]


def test_stateful_fused_carries_state(fused_here):
    ours, reference = _pair("lstm", stateful=True)
    for _ in range(2):  # the second call starts from the first call's final states
        _assert_same(ours, reference, MASKS["right_padded"])


def test_fused_under_jit_on_jax(fused_here):
    if BACKEND != "jax":
        pytest.skip("jax.jit of a stateless call")
    import jax

    ours, reference = _pair("lstm", return_sequences=True)

    @jax.jit
    def run(trainable, non_trainable, x, mask):
        return ours.stateless_call(trainable, non_trainable, x, mask=mask)[0]

    variables = ([v.value for v in ours.trainable_variables], [v.value for v in ours.non_trainable_variables])
    for mask in ("right_padded", "holed"):  # one compiled function takes both sides of the cond
        got = run(*variables, X, MASKS[mask])
        np.testing.assert_allclose(np.asarray(got), _numpy([reference(X, mask=MASKS[mask])])[0], atol=1e-5)


def test_implementation_fused_where_impossible_is_one_clear_error():
    layer = layers.SimpleRNN(4, implementation="fused", name="encoder")
    with pytest.raises(ValueError, match="encoder: implementation='fused' is not possible here: SimpleRNNCell has no"):
        layer.build(X.shape)


def test_implementation_is_checked_and_saved():
    with pytest.raises(ValueError, match="implementation"):
        layers.GRU(4, implementation="cudnn")
    layer = layers.GRU(4, implementation="equations")
    assert layers.GRU.from_config(layer.get_config()).implementation == "equations"
    keras_mode = layers.LSTM(4, implementation=1, dropout=0.1)  # keras.layers.LSTM's own argument
    assert (keras_mode.implementation, keras_mode.cell.implementation) == ("auto", 1)
    reloaded = layers.LSTM.from_config(keras_mode.get_config())
    assert (reloaded.implementation, reloaded.cell.implementation) == ("auto", 1)


def test_reverse_within_lengths():
    x = keras.ops.convert_to_tensor(np.arange(2 * 4).reshape(2, 4, 1).astype("float32"))
    got = keras.ops.convert_to_numpy(fused.reverse_within_lengths(x, keras.ops.convert_to_tensor([4, 2], "int32")))
    np.testing.assert_array_equal(got[..., 0], [[3, 2, 1, 0], [5, 4, 6, 7]])


BIDIRECTIONAL_OPTIONS = {
    "last": {},
    "sequences_state": {"return_sequences": True, "return_state": True},
    "sum": {"return_sequences": True, "merge_mode": "sum"},
}


def _bidirectional_pair(kind, merge_mode="concat", **options):
    """tfrnn's Bidirectional (one fused call) and Keras' (one call per direction), same weights."""
    if BACKEND == "jax" and kind == "gru":
        pytest.skip("JAX has no fused GRU kernel (dispatch table above)")
    ours = layers.Bidirectional(LAYERS[kind](4, **options), merge_mode=merge_mode)
    reference = keras.layers.Bidirectional(
        LAYERS[kind](4, implementation="equations", **options), merge_mode=merge_mode
    )
    for layer in (ours, reference):
        layer.build(X.shape)
    reference.set_weights(ours.get_weights())
    return ours, reference


@pytest.mark.parametrize("mask", list(MASKS))
@pytest.mark.parametrize("options", list(BIDIRECTIONAL_OPTIONS))
@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_one_bidirectional_call_equals_two_directions(fused_here, monkeypatch, kind, options, mask):
    ours, reference = _bidirectional_pair(kind, **BIDIRECTIONAL_OPTIONS[options])
    assert ours.fused_unavailable() is None
    kernel, directions = fused.KERNELS[BACKEND], []

    def counting_kernel(kind, cells, *args):
        directions.append(len(cells))
        return kernel(kind, cells, *args)

    monkeypatch.setitem(fused.KERNELS, BACKEND, counting_kernel)
    _assert_same(ours, reference, MASKS[mask])
    if mask in ("none", "right_padded"):
        assert directions[0] == 2  # one call for both directions


@pytest.mark.parametrize("mask", ["right_padded", "left_padded"])
def test_one_bidirectional_call_gradients(fused_here, mask):
    ours, reference = _bidirectional_pair("lstm", return_sequences=True)
    ours, reference = _Masked(ours, MASKS[mask]), _Masked(reference, MASKS[mask])
    for layer in (ours, reference):
        layer(X)

    def loss(outputs):
        return keras.ops.sum(keras.ops.sin(3.0 * outputs))

    value, grads = value_and_grads(ours, loss, X)
    want_value, want_grads = value_and_grads(reference, loss, X)
    assert value == pytest.approx(want_value, abs=1e-4)
    for got, want in zip(grads, want_grads):
        np.testing.assert_allclose(got, want, atol=1e-5)


def test_bidirectional_falls_back_where_one_call_cannot_run(fused_here):
    """Input dropout in training draws one mask per direction: two calls, as Keras makes them."""
    ours, reference = _bidirectional_pair("lstm", return_sequences=True, dropout=0.3, seed=5)
    assert "dropout" in ours.fused_unavailable(training=True)
    assert ours.fused_unavailable(training=False) is None
    _assert_same(ours, reference, MASKS["right_padded"], training=True)
    dropconnect, _ = _bidirectional_pair("lstm", return_sequences=True, weight_dropout=0.3)
    assert "DropConnect" in dropconnect.fused_unavailable(training=True)
    assert "mask" in dropconnect.fused_unavailable(mask=MASKS["right_padded"])
    plain = layers.Bidirectional(layers.SimpleRNN(4))
    plain.build(X.shape)
    assert "not both tfrnn LSTMs" in plain.fused_unavailable()
