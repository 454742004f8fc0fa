"""read_checkpoint: Hugging Face-format and keras-hub preset folders, and bad checkpoints."""

import json

import keras_hub
import numpy as np
import pytest

from tfrnn.errors import ConfigError
from tfrnn.models.bert import read_checkpoint

VOCABULARY = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "film", "great", "##s"]


def _hf_folder(path, tokenizer_config=None, **config):
    path.mkdir()
    hf_config = {"model_type": "bert", "hidden_act": "gelu", "max_position_embeddings": 64, **config}
    (path / "config.json").write_text(json.dumps(hf_config))
    (path / "vocab.txt").write_text("\n".join(VOCABULARY) + "\n")
    if tokenizer_config is not None:
        (path / "tokenizer_config.json").write_text(json.dumps(tokenizer_config))
    return str(path)


@pytest.mark.parametrize(
    "tokenizer_config, lowercase, strip_accents",
    [
        ({"do_lower_case": True, "strip_accents": None}, True, True),  # transformers: follows case
        ({"do_lower_case": True, "strip_accents": False}, True, False),
        ({"do_lower_case": False}, False, False),  # a cased checkpoint
        (None, True, True),  # no tokenizer_config.json: BertTokenizer's defaults
    ],
)
def test_hugging_face_tokenizer_settings(tmp_path, tokenizer_config, lowercase, strip_accents):
    checkpoint = read_checkpoint(_hf_folder(tmp_path / "ckpt", tokenizer_config))
    assert checkpoint.hugging_face
    assert (checkpoint.lowercase, checkpoint.strip_accents) == (lowercase, strip_accents)
    assert checkpoint.vocabulary.endswith("vocab.txt") and checkpoint.max_sequence_length == 64


@pytest.mark.parametrize(
    "hidden_act, activation",
    [("gelu", "gelu"), ("gelu_new", "gelu_approximate"), ("gelu_pytorch_tanh", "gelu_approximate")],
)
def test_hugging_face_activation(tmp_path, hidden_act, activation):
    assert read_checkpoint(_hf_folder(tmp_path / "ckpt", hidden_act=hidden_act)).activation == activation


@pytest.mark.parametrize(
    "config, message",
    [({"model_type": "roberta"}, "only BERT"), ({"hidden_act": "silu"}, "unsupported hidden_act")],
)
def test_unsupported_hugging_face_checkpoints(tmp_path, config, message):
    with pytest.raises(ConfigError, match=message):
        read_checkpoint(_hf_folder(tmp_path / "ckpt", **config))


def test_missing_checkpoint(tmp_path):
    with pytest.raises(ConfigError, match=r"model\.bert\.checkpoint=.*missing': no such folder"):
        read_checkpoint(str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match=r"empty': cannot read its config.json"):
        read_checkpoint(str(tmp_path / "empty"))


def test_keras_hub_preset_folder_loads_its_weights(tmp_path):
    stock = keras_hub.models.BertBackbone(
        vocabulary_size=len(VOCABULARY),
        num_layers=1,
        num_heads=2,
        hidden_dim=8,
        intermediate_dim=16,
        max_sequence_length=16,
    )
    tokenizer = keras_hub.models.BertTokenizer(vocabulary=VOCABULARY, lowercase=True)
    stock.save_to_preset(str(tmp_path / "preset"))
    tokenizer.save_to_preset(str(tmp_path / "preset"))
    checkpoint = read_checkpoint(str(tmp_path / "preset"))
    assert not checkpoint.hugging_face
    assert (checkpoint.activation, checkpoint.lowercase, checkpoint.max_sequence_length) == (
        "gelu_approximate",
        True,
        16,
    )
    assert open(checkpoint.vocabulary).read().split() == VOCABULARY
    loaded = checkpoint.load_backbone()
    x = {
        "token_ids": np.array([[2, 5, 6, 3]], "int32"),
        "segment_ids": np.zeros((1, 4), "int32"),
        "padding_mask": np.ones((1, 4), "int32"),
    }
    np.testing.assert_array_equal(loaded(x)["sequence_output"], stock(x)["sequence_output"])


@pytest.mark.parametrize("remove", ["vocab.txt", "max_position_embeddings"])
def test_incomplete_hugging_face_checkpoint(tmp_path, remove):
    folder = _hf_folder(tmp_path / "ckpt")
    if remove == "vocab.txt":
        (tmp_path / "ckpt" / "vocab.txt").unlink()
    else:
        (tmp_path / "ckpt" / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ConfigError, match=rf"model\.bert\.checkpoint=.*incomplete checkpoint .*{remove}"):
        read_checkpoint(folder)
