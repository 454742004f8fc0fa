"""tfrnn layers load keras.layers' weights and reproduce their outputs across the options."""

import keras
import numpy as np
import pytest

from tfrnn import layers

PAIRS = {
    "simple_rnn": (layers.SimpleRNN, keras.layers.SimpleRNN, {}),
    "lstm": (layers.LSTM, keras.layers.LSTM, {}),
    "lstm_no_forget_bias": (layers.LSTM, keras.layers.LSTM, {"unit_forget_bias": False}),
    "gru": (layers.GRU, keras.layers.GRU, {}),
    "gru_reset_before": (layers.GRU, keras.layers.GRU, {"reset_after": False}),
    "gru_no_bias": (layers.GRU, keras.layers.GRU, {"use_bias": False}),
}
OPTIONS = {
    "last": {},
    "sequences": {"return_sequences": True},
    "state": {"return_state": True},
    "sequences_state": {"return_sequences": True, "return_state": True},
    "backwards": {"go_backwards": True, "return_sequences": True},
    "unroll": {"unroll": True, "return_sequences": True},
}


@pytest.fixture(params=["hoisted", "per_step"])
def projection(request):
    """Both loops: the input projection hoisted out of the loop, and computed per step."""
    return request.param


def _pair(name, projection="hoisted", **options):
    ours, theirs, kwargs = PAIRS[name]
    return (
        ours(4, input_projection=projection, **kwargs, **options),
        theirs(4, **kwargs, **options),
    )


def _assert_same(a, b, atol=1e-5):
    a, b = keras.tree.flatten(a), keras.tree.flatten(b)
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), atol=atol)


def _inputs(shape=(3, 6, 5), seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


@pytest.mark.parametrize("option", OPTIONS)
@pytest.mark.parametrize("name", PAIRS)
def test_same_weights_same_outputs(name, option, projection):
    ours, theirs = _pair(name, projection, **OPTIONS[option])
    x = _inputs()
    theirs(x)
    ours(x)
    assert [w.shape for w in ours.weights] == [w.shape for w in theirs.weights]
    assert [w.name for w in ours.weights] == [w.name for w in theirs.weights]
    ours.set_weights(theirs.get_weights())
    _assert_same(ours(x), theirs(x))


@pytest.mark.parametrize("name", PAIRS)
def test_same_dropout_masks_in_training(name, projection):
    # Same seed, same mask draws in the same order: Keras' dropout semantics exactly.
    ours, theirs = _pair(name, projection, dropout=0.3, recurrent_dropout=0.2, seed=7, return_sequences=True)
    x = _inputs()
    theirs(x)
    ours(x)
    ours.set_weights(theirs.get_weights())
    _assert_same(ours(x, training=True), theirs(x, training=True))
    _assert_same(ours(x, training=False), theirs(x, training=False))


@pytest.mark.parametrize("name", PAIRS)
def test_input_dropout_only(name, projection):
    ours, theirs = _pair(name, projection, dropout=0.5, seed=3, return_sequences=True)
    x = _inputs()
    theirs(x)
    ours(x)
    ours.set_weights(theirs.get_weights())
    _assert_same(ours(x, training=True), theirs(x, training=True))


@pytest.mark.parametrize("name", PAIRS)
@pytest.mark.parametrize("padding", ["right", "left"])
def test_masking_with_embedding_mask_zero(name, padding, projection):
    # A full row, a short row, a fully padded row and a length-1 row.
    tokens = {
        "right": [[3, 4, 5, 6, 7], [8, 9, 0, 0, 0], [0, 0, 0, 0, 0], [2, 0, 0, 0, 0]],
        "left": [[3, 4, 5, 6, 7], [0, 0, 0, 8, 9], [0, 0, 0, 0, 0], [0, 0, 0, 0, 2]],
    }[padding]
    tokens = np.array(tokens)
    outputs = []
    for layer in _pair(name, projection, return_sequences=True, return_state=True):
        model = keras.Sequential([keras.layers.Embedding(10, 5, mask_zero=True), layer])
        model(tokens)
        outputs.append(model)
    ours, theirs = outputs
    ours.set_weights(theirs.get_weights())
    _assert_same(ours(tokens), theirs(tokens))


@pytest.mark.parametrize("name", PAIRS)
def test_initial_state(name, projection):
    ours, theirs = _pair(name, projection, return_state=True)
    x = _inputs()
    theirs(x)
    ours(x)
    ours.set_weights(theirs.get_weights())
    n_states = len(ours.cell.get_initial_state(3))
    init = [np.random.default_rng(i).normal(size=(3, 4)).astype("float32") for i in range(n_states)]
    _assert_same(ours(x, initial_state=init), theirs(x, initial_state=init))


@pytest.mark.parametrize("name", PAIRS)
def test_stateful_carries_state_across_calls(name, projection):
    ours, theirs = _pair(name, projection, stateful=True, return_sequences=True)
    x1, x2 = _inputs(seed=1), _inputs(seed=2)
    theirs(x1)
    ours(x1)
    ours.set_weights(theirs.get_weights())
    ours.reset_state()
    theirs.reset_state()
    _assert_same(ours(x1), theirs(x1))
    _assert_same(ours(x2), theirs(x2))
    ours.reset_state()
    theirs.reset_state()
    _assert_same(ours(x2), theirs(x2))


@pytest.mark.parametrize("name", ["lstm", "gru", "simple_rnn"])
def test_bidirectional_and_stacked(name):
    def build(i):
        layer_class = PAIRS[name][i]
        return keras.Sequential(
            [
                keras.Input((6, 5)),
                keras.layers.Bidirectional(layer_class(4, return_sequences=True)),
                layer_class(3, return_sequences=True),
                layer_class(2),
            ]
        )

    ours, theirs = build(0), build(1)
    ours.set_weights(theirs.get_weights())
    x = _inputs()
    _assert_same(ours(x), theirs(x))


@pytest.mark.parametrize("name", ["lstm", "gru", "simple_rnn"])
def test_weights_h5_files_load_both_ways(name, tmp_path):
    def build(i):
        return keras.Sequential([keras.Input((6, 5)), PAIRS[name][i](4), keras.layers.Dense(1)])

    x = _inputs()
    theirs, ours = build(1), build(0)
    theirs.save_weights(tmp_path / "theirs.weights.h5")
    ours.load_weights(tmp_path / "theirs.weights.h5")
    _assert_same(ours(x), theirs(x))

    ours2, theirs2 = build(0), build(1)
    ours2.save_weights(tmp_path / "ours.weights.h5")
    theirs2.load_weights(tmp_path / "ours.weights.h5")
    _assert_same(ours2(x), theirs2(x))


def test_regularizers_and_constraints_match_keras():
    options = dict(
        kernel_regularizer="l2",
        recurrent_regularizer="l1",
        bias_regularizer="l2",
        kernel_constraint=keras.constraints.MaxNorm(0.5),
        recurrent_constraint=keras.constraints.NonNeg(),
        bias_constraint=keras.constraints.UnitNorm(axis=0),
    )
    x, y = _inputs(), np.ones((3, 1), "float32")
    models = []
    for layer in _pair("lstm", **options):
        model = keras.Sequential([keras.Input((6, 5)), layer, keras.layers.Dense(1)])
        model.compile(optimizer=keras.optimizers.SGD(0.5), loss="mse")
        models.append(model)
    ours, theirs = models
    ours.set_weights(theirs.get_weights())
    _assert_same(ours.losses, theirs.losses)
    ours.train_on_batch(x, y)
    theirs.train_on_batch(x, y)
    _assert_same(ours.get_weights(), theirs.get_weights())
    assert np.all(np.asarray(ours.layers[0].cell.recurrent_kernel) >= 0)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
@pytest.mark.parametrize("name", ["lstm", "gru", "simple_rnn"])
def test_mixed_precision_keeps_float32_where_keras_does(name, policy):
    keras.config.set_dtype_policy(policy)
    ours, theirs = _pair(name, return_sequences=True, return_state=True)
    x = _inputs()
    out_theirs = theirs(x)
    ours(x)
    ours.set_weights(theirs.get_weights())
    out_ours = ours(x)
    assert [w.dtype for w in ours.weights] == [w.dtype for w in theirs.weights] == ["float32"] * 3
    assert [o.dtype for o in out_ours] == [o.dtype for o in out_theirs]
    tolerance = 1e-2 if policy == "mixed_float16" else 5e-2
    _assert_same(out_ours, out_theirs, atol=tolerance)
