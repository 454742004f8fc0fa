"""Training, evaluation and prediction of text classifiers."""

from tfrnn.training.train import TrainResult, train

__all__ = ["TrainResult", "train"]
