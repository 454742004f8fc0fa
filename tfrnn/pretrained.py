"""A finished `tfrnn pretrain` run as the start of another run (`init_from`): the classifier of
`tfrnn train --init-from`, or the language model of the next pretraining stage (ULMFiT's
fine-tuning of the language model on the target task's text)."""

import dataclasses

from tfrnn.config import INIT_FROM_FIELDS, PRETRAIN_DECIDED
from tfrnn.errors import ConfigError
from tfrnn.models.transfer import copy_layer_weights


@dataclasses.dataclass(frozen=True)
class PretrainedRun:
    """A pretrain run's spec and language model (`tfrnn.runs.load_pretrained` reads it).

    Args:
        paths: tfrnn.runs.RunPaths. Its files.
        spec: tfrnn.config.PretrainConfig. Its run spec.
        model: keras.Model. The language model, which owns its preprocessor.
    """

    paths: object
    spec: object
    model: object

    @property
    def kind(self):
        return self.spec.model.kind

    def _cleaning(self, data):
        """`data` (a data section) with this run's cleaning: the vocabulary was learned with it."""
        return dataclasses.replace(data, strip_html=self.spec.data.strip_html, unicode_form=self.spec.data.unicode_form)

    def _check_max_len(self, data):
        """A BERT's sequences fit its position embeddings.

        Raises:
            ConfigError: data.max_len beyond them.
        """
        if self.kind == "bert" and data.max_len > self.max_sequence_length:
            raise ConfigError(
                f"data.max_len={data.max_len}: the pretrained BERT ({self.paths.root}) has position "
                f"embeddings for {self.max_sequence_length} tokens",
                "data.max_len",
            )

    def architecture_of(self, config):
        """A PretrainConfig going on from this run, with this run's architecture and cleaning.

        Raises:
            ConfigError: data.max_len beyond what a BERT's position embeddings cover.
        """
        self._check_max_len(config.data)
        mine = self.spec.model.section
        section = dataclasses.replace(
            config.model.section, **{name: getattr(mine, name) for name in PRETRAIN_DECIDED[self.kind]}
        )
        model = dataclasses.replace(config.model, **{self.kind: section})
        return dataclasses.replace(config, model=model, data=self._cleaning(config.data))

    def classifier_of(self, config):
        """A RunConfig of a classifier on this run's encoder: its section's encoder settings
        (`INIT_FROM_FIELDS`) and the data's cleaning are this run's.

        Raises:
            ConfigError: data.max_len beyond what a BERT's position embeddings cover.
        """
        if self.kind == "rnn":
            lm = self.spec.model.rnn
            decided = {name: getattr(lm, name) for name in INIT_FROM_FIELDS["rnn"] if hasattr(lm, name)}
            decided.update(cell="lstm", bidirectional=False, vocab_size=self.model.preprocessor.vocabulary_size)
        else:
            self._check_max_len(config.data)
            backbone = self.model.backbone
            decided = dict(
                checkpoint=None,
                lowercase=self.lowercase,
                strip_accents=self.strip_accents,
                vocab_size=backbone.vocabulary_size,
                layers=backbone.num_layers,
                hidden_dim=backbone.hidden_dim,
                heads=backbone.num_heads,
            )
        section = dataclasses.replace(config.model.section, **decided)
        model = dataclasses.replace(config.model, **{self.kind: section})
        return dataclasses.replace(config, model=model, data=self._cleaning(config.data))

    def preprocessor_for(self, max_len):
        """This run's preprocessor (its vocabulary and cleaning) for sequences of `max_len`."""
        preprocessor = self.model.preprocessor
        return type(preprocessor).from_config({**preprocessor.get_config(), "max_len": max_len})

    def transfer(self, classifier):
        """Copies the encoder's weights (RNN: embedding and recurrent layers) into `classifier`."""
        copy_layer_weights(self.model, classifier, self.model.encoder_layer_names())

    # A BERT checkpoint's interface (tfrnn.models.bert.Checkpoint), for the classifier's builder.

    @property
    def lowercase(self):
        return self.model.preprocessor.lowercase

    @property
    def strip_accents(self):
        return self.model.preprocessor.strip_accents

    @property
    def max_sequence_length(self):
        return self.model.backbone.max_sequence_length

    def load_backbone(self, dtype=None):
        """A copy of the pretrained BERT encoder, made where it is called (under a strategy's
        scope and the dtype policy), as a checkpoint's `load_backbone` makes one.

        Args:
            dtype: str or None. A dtype policy name; None is the global one.
        """
        source = self.model.backbone
        config = {k: v for k, v in source.get_config().items() if k not in ("name", "trainable", "dtype")}
        backbone = type(source)(**config, dtype=dtype)
        backbone.set_weights(source.get_weights())
        return backbone
