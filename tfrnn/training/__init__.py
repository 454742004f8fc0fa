"""Training, evaluation and prediction of text classifiers (`tfrnn.training.train.train`)."""
