"""Text classifiers and the language model built on tfrnn's layers (keras only, backend-agnostic)."""

from tfrnn.models.factory import build_classifier
from tfrnn.models.feedforward import FeedForwardClassifier
from tfrnn.models.language_model import RNNLanguageModel
from tfrnn.models.rnn_classifier import RECURRENT_LAYERS, RNNClassifier

__all__ = ["FeedForwardClassifier", "RECURRENT_LAYERS", "RNNClassifier", "RNNLanguageModel", "build_classifier"]
