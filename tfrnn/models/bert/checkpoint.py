"""Reading a BERT checkpoint: its tokenizer settings, its activation, its weights.

A checkpoint is any keras-hub preset handle:
- a local Hugging Face-format folder (config.json with `model_type: bert`, model.safetensors,
  vocab.txt, tokenizer_config.json), loaded with no network;
- `hf://org/name` (Hugging Face Hub) and `kaggle://...` or a keras-hub preset name such as
  `bert_tiny_en_uncased` (Kaggle), when online;
- a local keras-hub preset folder (config.json with `class_name`, model.weights.h5,
  assets/tokenizer/vocabulary.txt).

Hugging Face checkpoints keep their own settings: `hidden_act` (exact GELU for BERT), and the
tokenizer's `do_lower_case`, `strip_accents` (None follows lower-casing, as in transformers)
and `tokenize_chinese_chars`. keras-hub presets come from the original BERT, which used the
tanh-approximated GELU.
"""

import dataclasses
import json
import os

import keras_hub
from keras_hub.src.utils.preset_utils import check_file_exists, get_file

from tfrnn.errors import ConfigError
from tfrnn.models.bert.backbone import HF_ACTIVATIONS, BertBackbone


@dataclasses.dataclass
class Checkpoint:
    """A BERT checkpoint's settings.

    Args:
        handle: str. The preset handle (folder, hf://, kaggle:// or preset name).
        hugging_face: bool. Hugging Face format (else a keras-hub preset).
        activation: str. The feed-forward activation ("gelu" or "gelu_approximate").
        vocabulary: str. Local path of the WordPiece vocabulary, one token a line.
        lowercase: bool. The tokenizer lower-cases.
        strip_accents: bool. The tokenizer removes accents.
        split_on_cjk: bool. The tokenizer makes each CJK character a word.
        max_sequence_length: int. The longest sequence the position embeddings cover.
    """

    handle: str
    hugging_face: bool
    activation: str
    vocabulary: str
    lowercase: bool
    strip_accents: bool
    split_on_cjk: bool
    max_sequence_length: int

    def load_backbone(self, dtype=None):
        """The pretrained encoder, with this checkpoint's activation.

        Args:
            dtype: str or None. A dtype policy name ("mixed_bfloat16", ...); None is global.

        Returns:
            tfrnn.models.bert.BertBackbone with the checkpoint's weights.
        """
        # keras-hub converts the weights (safetensors or .h5) into its own BertBackbone; the same
        # architecture with the right activation then takes them over, variable for variable.
        source = keras_hub.models.BertBackbone.from_preset(self.handle, dtype=dtype)
        config = {k: v for k, v in source.get_config().items() if k not in ("name", "trainable")}
        backbone = BertBackbone(**config, activation=self.activation)
        backbone.set_weights(source.get_weights())
        del source  # one copy of the weights from here on
        return backbone


def _json(handle, name):
    with open(get_file(handle, name), encoding="utf-8") as f:
        return json.load(f)


def read_checkpoint(handle):
    """Reads a checkpoint's settings (downloading only its small files when remote).

    Args:
        handle: str. A local folder, `hf://...`, `kaggle://...` or a keras-hub preset name.

    Returns:
        Checkpoint.

    Raises:
        ConfigError: the checkpoint cannot be found or read, or is not a BERT.
    """
    try:
        return _read_checkpoint(handle)
    except ConfigError:
        raise
    except (KeyError, OSError, ValueError) as error:  # a missing key or file, bad JSON, no network
        reason = " ".join(str(error).split("\n")[0].split())
        raise ConfigError(
            f"model.bert.checkpoint={handle!r}: incomplete checkpoint ({type(error).__name__}: {reason})"
        ) from None


def _read_checkpoint(handle):
    local = "://" not in handle and (os.sep in handle or handle.startswith("."))
    if local and not os.path.isdir(handle):
        raise ConfigError(
            f"model.bert.checkpoint={handle!r}: no such folder (expected a Hugging Face-format folder "
            "with config.json, hf://org/name, kaggle://... or a keras-hub preset name)"
        )
    try:
        config = _json(handle, "config.json")
    except Exception as error:  # no config.json, no network, bad JSON, unknown preset name
        reason = " ".join(str(error).split("\n")[0].split())
        raise ConfigError(f"model.bert.checkpoint={handle!r}: cannot read its config.json ({reason})") from None
    if "model_type" in config:  # Hugging Face format
        if config["model_type"] != "bert":
            raise ConfigError(
                f"model.bert.checkpoint={handle!r}: model_type {config['model_type']!r}; only BERT is supported"
            )
        hidden_act = config.get("hidden_act", "gelu")
        if hidden_act not in HF_ACTIVATIONS:
            raise ConfigError(f"model.bert.checkpoint={handle!r}: unsupported hidden_act {hidden_act!r}")
        tokenizer = _json(handle, "tokenizer_config.json") if check_file_exists(handle, "tokenizer_config.json") else {}
        lowercase = bool(tokenizer.get("do_lower_case", True))
        strip_accents = tokenizer.get("strip_accents")
        return Checkpoint(
            handle=handle,
            hugging_face=True,
            activation=HF_ACTIVATIONS[hidden_act],
            vocabulary=get_file(handle, "vocab.txt"),
            lowercase=lowercase,
            strip_accents=lowercase if strip_accents is None else bool(strip_accents),
            split_on_cjk=bool(tokenizer.get("tokenize_chinese_chars", True)),
            max_sequence_length=int(config["max_position_embeddings"]),
        )
    if not config.get("class_name", "").endswith("BertBackbone"):
        raise ConfigError(f"model.bert.checkpoint={handle!r}: not a BERT checkpoint ({config.get('class_name')})")
    tokenizer = _json(handle, "tokenizer.json").get("config", {})
    lowercase = bool(tokenizer.get("lowercase", False))
    return Checkpoint(
        handle=handle,
        hugging_face=False,
        activation=config["config"].get("activation", "gelu_approximate"),
        vocabulary=get_file(handle, "assets/tokenizer/vocabulary.txt"),
        lowercase=lowercase,
        strip_accents=bool(tokenizer.get("strip_accents", False)),
        split_on_cjk=bool(tokenizer.get("split_on_cjk", True)),
        max_sequence_length=int(config["config"]["max_sequence_length"]),
    )
