"""Recurrent layers written from their equations (weight-compatible with `keras.layers`) and AWD-LSTM regularisers."""

from tfrnn.layers.base import ProjectedCell, ProjectedRNN
from tfrnn.layers.bidirectional import Bidirectional
from tfrnn.layers.feedback import ClipValue, Feedback, FeedbackCell
from tfrnn.layers.gru import GRU, GRUCell
from tfrnn.layers.lstm import LSTM, LSTMCell
from tfrnn.layers.pooling import MaskedGlobalPooling1D
from tfrnn.layers.regularization import ActivationRegularization, EmbeddingDropout, locked_dropout
from tfrnn.layers.simple_rnn import SimpleRNN, SimpleRNNCell

__all__ = [
    "ActivationRegularization",
    "Bidirectional",
    "ClipValue",
    "EmbeddingDropout",
    "Feedback",
    "FeedbackCell",
    "GRU",
    "GRUCell",
    "LSTM",
    "LSTMCell",
    "MaskedGlobalPooling1D",
    "ProjectedCell",
    "ProjectedRNN",
    "SimpleRNN",
    "SimpleRNNCell",
    "locked_dropout",
]
