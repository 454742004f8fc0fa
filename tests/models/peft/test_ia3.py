"""model.peft=ia3 on a tiny BERT classifier: exactly unchanged at the start, only the scales (keys,
values, feed-forward activations) and the head train with the base bit-identical, the merge
keeps the outputs, and the scales' gradients are exact."""

import keras
import numpy as np
import pytest
from keras import ops

from tests.layers.gradients import assert_gradients_match_finite_differences
from tests.models.peft.common import (
    assert_merge_keeps_outputs,
    assert_runs_under_mixed_precision,
    assert_starts_unchanged,
    assert_trains_only_its_weights,
    peft_model,
)
from tfrnn.models.peft import ia3


def test_ia3_starts_exactly_unchanged():
    assert_starts_unchanged("ia3", atol=0)


def test_ia3_trains_only_its_scales():
    assert_trains_only_its_weights("ia3", lambda path: path.endswith("/ia3_scale"))
    model = peft_model("ia3", targets=["query"])  # fixed targets: the setting is not read
    scales = {w.path: tuple(w.shape) for w in model.trainable_weights if not w.path.startswith("logits/")}
    assert scales == {
        f"transformer_layer_{block}/{path}/ia3_scale": shape
        for block in range(2)
        for path, shape in [
            ("self_attention_layer/key", (2, 8)),  # (heads, head_dim)
            ("self_attention_layer/value", (2, 8)),
            ("feedforward_output_dense", (64,)),  # (intermediate,)
        ]
    }


def test_ia3_merges_into_the_kernels():
    assert_merge_keeps_outputs("ia3", atol=1e-5)


@pytest.mark.parametrize("scaled", ["outputs", "inputs"])
def test_ia3_gradients_match_finite_differences(scaled):
    rng = np.random.default_rng(0)
    if scaled == "outputs":  # a key: 5 -> 2 heads x 3
        layer = keras.layers.EinsumDense("abc,cde->abde", (None, 2, 3), bias_axes="de")
        layer.build((2, 4, 5))
        ia3.scale_outputs(layer)
    else:  # a feed-forward output: 5 -> 6
        layer = keras.layers.Dense(6)
        layer.build((2, 4, 5))
        ia3.scale_inputs(layer)
    assert [v.path.split("/")[-1] for v in layer.trainable_variables] == ["ia3_scale"]
    layer.ia3_scale.assign(rng.uniform(0.5, 1.5, size=layer.ia3_scale.shape))
    weights = ops.reshape(ops.arange(1, 49, dtype="float32"), (2, 4, 6)) / 24.0

    def loss(out):  # (2, 4, 2, 3) or (2, 4, 6)
        return ops.sum(ops.sin(ops.reshape(out, (2, 4, 6))) * weights)

    x = rng.normal(size=(2, 4, 5)).astype("float32")
    assert_gradients_match_finite_differences(layer, loss, x, rng)


def test_ia3_runs_under_mixed_precision():
    assert_runs_under_mixed_precision("ia3")
