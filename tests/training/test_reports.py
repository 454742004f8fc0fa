"""classification_metrics on a small example checked by hand; the figures are PNG files."""

import matplotlib.pyplot as plt
import numpy as np
import pytest

from tfrnn.training import reports

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# True labels and the argmax of the probabilities below:
#   labels      0 0 1 1 2 2 2
#   predictions 0 1 1 1 2 0 2   -> 5 of 7 right
LABELS = np.array([0, 0, 1, 1, 2, 2, 2])
PROBABILITIES = np.array(
    [
        [0.8, 0.1, 0.1],
        [0.3, 0.6, 0.1],
        [0.2, 0.7, 0.1],
        [0.1, 0.5, 0.4],
        [0.1, 0.1, 0.8],
        [0.5, 0.2, 0.3],
        [0.3, 0.3, 0.4],
    ]
)


def test_metrics_by_hand():
    result = reports.classification_metrics(LABELS, PROBABILITIES, ["a", "b", "c"])
    assert result["count"] == 7
    assert result["accuracy"] == pytest.approx(5 / 7)
    # Rows are true labels, columns predictions.
    assert result["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 2]]
    # a: precision 1/2 (rows 0 and 5 predicted a), recall 1/2 -> F1 1/2
    # b: precision 2/3, recall 2/2 -> F1 2 * (2/3) / (5/3) = 4/5
    # c: precision 2/2, recall 2/3 -> F1 4/5
    per_class = result["per_class"]
    assert [per_class[n]["precision"] for n in "abc"] == pytest.approx([0.5, 2 / 3, 1.0])
    assert [per_class[n]["recall"] for n in "abc"] == pytest.approx([0.5, 1.0, 2 / 3])
    assert [per_class[n]["f1-score"] for n in "abc"] == pytest.approx([0.5, 0.8, 0.8])
    assert [per_class[n]["support"] for n in "abc"] == [2, 2, 3]
    assert result["macro_f1"] == pytest.approx((0.5 + 0.8 + 0.8) / 3)  # 0.7
    assert result["weighted_f1"] == pytest.approx((2 * 0.5 + 2 * 0.8 + 3 * 0.8) / 7)  # 5/7
    assert "a" in result["report"] and "0.7143" in result["report"]  # accuracy, 4 digits


def test_a_label_never_seen_still_counts():
    """A fourth label with no examples and no predictions: a zero row and column, F1 0 (no warning
    and no NaN), and the macro average is taken over all four labels."""
    probabilities = np.concatenate([PROBABILITIES, np.zeros((7, 1))], axis=1)
    result = reports.classification_metrics(LABELS, probabilities, ["a", "b", "c", "d"])
    assert result["confusion_matrix"][3] == [0, 0, 0, 0]
    assert [row[3] for row in result["confusion_matrix"]] == [0, 0, 0, 0]
    assert result["per_class"]["d"] == {"precision": 0.0, "recall": 0.0, "f1-score": 0.0, "support": 0.0}
    assert result["macro_f1"] == pytest.approx((0.5 + 0.8 + 0.8 + 0.0) / 4)
    assert result["accuracy"] == pytest.approx(5 / 7)


def test_logits_give_the_same_metrics_as_their_softmax():
    """The models' heads give logits; the metrics depend only on the argmax, so logits and their
    softmax (what the runs pass) agree."""
    logits = np.log(PROBABILITIES) + 3.0  # softmax(logits) == PROBABILITIES (rows sum to 1)
    from_logits = reports.classification_metrics(LABELS, logits, ["a", "b", "c"])
    assert from_logits == reports.classification_metrics(LABELS, PROBABILITIES, ["a", "b", "c"])


def test_metrics_are_json_types():
    import json

    result = reports.classification_metrics(LABELS, PROBABILITIES, ["a", "b", "c"])
    assert json.loads(json.dumps(result)) == result


def _is_png(path):
    return path.is_file() and path.read_bytes()[:8] == PNG_SIGNATURE and path.stat().st_size > 1000


def test_training_curves_png(tmp_path):
    history = {
        "loss": [0.7, 0.5, 0.4],
        "accuracy": [0.5, 0.7, 0.8],
        "val_loss": [0.6, 0.55, 0.5],
        "val_accuracy": [0.6, 0.65, 0.7],
    }
    path = tmp_path / "curves.png"
    reports.plot_training_curves(history, path)
    assert _is_png(path)
    assert plt.get_fignums() == []  # the figure is closed, not leaked


def test_training_curves_without_validation(tmp_path):
    path = tmp_path / "curves.png"
    reports.plot_training_curves({"loss": [0.7], "accuracy": [0.5]}, path)
    assert _is_png(path)


def test_confusion_matrix_png(tmp_path):
    path = tmp_path / "confusion.png"
    reports.plot_confusion_matrix([[1, 1, 0], [0, 2, 0], [1, 0, 2]], ["a", "b", "c"], path, title="test")
    assert _is_png(path)
    assert plt.get_fignums() == []
