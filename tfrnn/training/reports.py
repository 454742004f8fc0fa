"""Evaluation metrics (scikit-learn) and figures (matplotlib) for a classifier."""

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
from sklearn import metrics  # noqa: E402


def classification_metrics(labels, probabilities, label_names):
    """Accuracy, F1 and the confusion matrix of predictions against true labels.

    Args:
        labels: np.ndarray. True label ids, (n,).
        probabilities: np.ndarray. Predicted probabilities, (n, num_classes).
        label_names: list of str. Name of each label id.

    Returns:
        dict with accuracy, macro_f1, weighted_f1, count, confusion_matrix (list of lists),
        report (scikit-learn's text report) and per_class (precision, recall, f1, support).
    """
    predictions = np.argmax(probabilities, axis=-1)
    ids = list(range(len(label_names)))
    per_class = metrics.classification_report(
        labels, predictions, labels=ids, target_names=label_names, output_dict=True, zero_division=0
    )
    return {
        "count": int(len(labels)),
        "accuracy": float(metrics.accuracy_score(labels, predictions)),
        "macro_f1": float(metrics.f1_score(labels, predictions, labels=ids, average="macro", zero_division=0)),
        "weighted_f1": float(metrics.f1_score(labels, predictions, labels=ids, average="weighted", zero_division=0)),
        "confusion_matrix": metrics.confusion_matrix(labels, predictions, labels=ids).tolist(),
        "per_class": {name: per_class[name] for name in label_names},
        "report": metrics.classification_report(
            labels, predictions, labels=ids, target_names=label_names, digits=4, zero_division=0
        ),
    }


def plot_training_curves(history, path, metrics=("loss", "accuracy")):
    """Saves two metrics per epoch (train and validation, where logged) as a PNG.

    Args:
        history: dict. Keras' `History.history` (lists per metric).
        path: str or Path. Where to write the PNG.
        metrics: tuple of two str. The panels' metrics (a language model's: loss, perplexity).
    """
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, metric in zip(axes, metrics):
        for key, label in ((metric, "train"), (f"val_{metric}", "validation")):
            if key in history:
                epochs = range(1, len(history[key]) + 1)
                ax.plot(epochs, history[key], marker="o", label=label)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_confusion_matrix(matrix, label_names, path, title="confusion matrix"):
    """Saves a confusion matrix as a PNG.

    Args:
        matrix: list of lists or np.ndarray. Rows are true labels, columns predictions.
        label_names: list of str. Label names in id order.
        path: str or Path. Where to write the PNG.
        title: str. The figure's title.
    """
    size = max(4, 0.6 * len(label_names) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    metrics.ConfusionMatrixDisplay(np.asarray(matrix), display_labels=label_names).plot(
        ax=ax, colorbar=False, cmap="Blues"
    )
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
