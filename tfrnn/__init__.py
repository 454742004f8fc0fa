"""tfrnn: recurrent (feedback) networks from their equations, and text-model fine-tuning, on Keras 3."""

from tfrnn import layers

__version__ = "0.1.0"
