"""`tfrnn report`: a finished run as one self-contained HTML page, RUN/report.html.

The page reads the run's files (config.yaml, metrics.json, the figures, evaluations/*.json) and
adds what no file holds: the most confident errors on the evaluated split (the test split when
the source has one, else the validation split, re-read as training split it), each with its
integrated-gradients attributions (`tfrnn.explain`). Everything is inline (CSS, the figures as
data: URIs): it opens without a network, on a phone as on a laptop.
"""

import base64
import html
import json

import numpy as np

from tfrnn import __version__, data
from tfrnn.errors import ConfigError
from tfrnn.explain import explain_texts, render_html_fragment, render_html_legend
from tfrnn.files import atomic_write_text
from tfrnn.runs import LoadedRun, load_run, predict_probabilities, read_spec

ERRORS_SHOWN = 5
IG_STEPS = 50

STYLE = (
    "body{font-family:system-ui,-apple-system,sans-serif;max-width:60rem;margin:0 auto;padding:1rem;"
    "line-height:1.5;color:#111827;overflow-wrap:anywhere}"
    "h2{margin-top:2rem;border-bottom:1px solid #e5e7eb}"
    "img{max-width:100%;height:auto;display:block}"
    "pre{background:#f3f4f6;padding:.75rem;border-radius:6px;overflow-x:auto;font-size:.85rem}"
    ".table-wrap{overflow-x:auto}"
    "table{border-collapse:collapse;margin:.5rem 0}"
    "th,td{padding:.25rem .6rem;border-bottom:1px solid #e5e7eb;text-align:left;overflow-wrap:normal}"
    "th,td.number{white-space:nowrap}"
    "td.number{text-align:right;font-variant-numeric:tabular-nums}"
    ".error-meta{font-size:.9rem;margin:.25rem 0;color:#374151}"
)


def write_report(run_dir, log=print, model=None):
    """Writes RUN/report.html, atomically.

    Args:
        run_dir: str or Path. A finished classifier run (`tfrnn train`).
        log: callable. Receives the line saying where the report went.
        model: keras.Model or None. The run's classifier when the caller has it loaded
            (`tfrnn train`); else loaded from the run.

    Returns:
        Path. RUN/report.html.

    Raises:
        ConfigError: not a run directory, a language model's run, or an unfinished run.
    """
    paths, spec = read_spec(run_dir)
    if spec.task == "pretrain":
        raise ConfigError(f"{paths.root}: a language model (tfrnn pretrain); reports are for classifier runs")
    if not paths.metrics.is_file():
        raise ConfigError(
            f"{paths.root}: unfinished (no metrics.json); finish it with tfrnn train --resume {paths.root}"
        )
    run = load_run(paths.root) if model is None else LoadedRun(paths, spec, model)
    metrics = json.loads(paths.metrics.read_text(encoding="utf-8"))
    sections = [
        _section("config", "Config", f"<pre>{html.escape(paths.config.read_text(encoding='utf-8'))}</pre>"),
        _section("data", "Data", _data_summary(spec, metrics)),
        _section("curves", "Training curves", _image(paths.curves, "training curves: loss and accuracy per epoch")),
        _section("confusion", "Confusion matrix", _image(paths.confusion, "confusion matrix")),
        _section("per-class", "Per-class report", _per_class(metrics, spec.data.labels)),
        _section("errors", "Most confident errors", _errors(run)),
    ]
    evaluations = sorted(paths.evaluations.glob("*.json")) if paths.evaluations.is_dir() else []
    if evaluations:
        sections.append(_section("evaluations", "Evaluations of other data", _evaluations(evaluations)))
    title = f"tfrnn report: {paths.root.name}"
    facts = (
        f"model.kind={spec.model.kind} · {metrics.get('epochs_run', '?')} epochs · "
        f"{metrics.get('parameters', 0):,} parameters · tfrnn {__version__}"
    )
    target = paths.root / "report.html"
    atomic_write_text(
        target,
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<link rel="icon" href="data:,">\n'
        f"<title>{html.escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        f'<h1>{html.escape(title)}</h1>\n<p class="facts">{html.escape(facts)}</p>\n'
        + "\n".join(sections)
        + "\n</body>\n</html>\n",
    )
    log(f"report: {target}")
    return target


def _section(key, heading, body):
    return f'<section id="{key}">\n<h2>{html.escape(heading)}</h2>\n{body}\n</section>'


def _table(header, rows):
    """An HTML table that scrolls sideways on a narrow screen; numbers right-aligned."""

    def cell(value, tag):
        if isinstance(value, float):
            return f'<{tag} class="number">{value:.4f}</{tag}>'
        if isinstance(value, int):
            return f'<{tag} class="number">{value:,}</{tag}>'
        return f"<{tag}>{html.escape(str(value))}</{tag}>"

    head = "".join(cell(name, "th") for name in header)
    body = "".join("<tr>" + "".join(cell(value, "td") for value in row) + "</tr>" for row in rows)
    return f'<div class="table-wrap"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def _data_summary(spec, metrics):
    source = spec.data.source
    for name in ("path", "test_path"):
        value = getattr(spec.data, name, None)
        if value:
            source += f" · data.{name}={value}"
    rows = [("train", metrics.get("train_examples", "?"))]
    if "augmented_examples" in metrics:
        rows.append(("train, augmented", metrics["augmented_examples"]))
    rows += [(split, metrics[split]["count"]) for split in ("validation", "test") if split in metrics]
    return f"<p>source: {html.escape(source)}<br>labels: {html.escape(', '.join(spec.data.labels))}</p>\n" + _table(
        ("split", "examples"), rows
    )


def _image(path, alt):
    """A PNG of the run, inlined as a data: URI (or a line saying it is missing)."""
    if not path.is_file():
        return f"<p>no {html.escape(path.name)} in this run (no evaluation split?)</p>"
    encoded = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img src="data:image/png;base64,{encoded}" alt="{html.escape(alt)}">'


def _per_class(metrics, labels):
    """Accuracy and macro F1 of each evaluated split, and its precision, recall, F1 by class."""
    splits = [split for split in ("validation", "test") if split in metrics]
    if not splits:
        return "<p>no evaluation split (data.validation_split=0 and no test split)</p>"
    parts = [
        _table(
            ("split", "accuracy", "macro F1", "examples"),
            [(s, metrics[s]["accuracy"], metrics[s]["macro_f1"], metrics[s]["count"]) for s in splits],
        )
    ]
    for split in splits:
        per_class = metrics[split].get("per_class", {})
        rows = [
            (name, c["precision"], c["recall"], c["f1-score"], int(c["support"]))
            for name in labels
            if (c := per_class.get(name))
        ]
        parts.append(f"<h3>{split}</h3>\n" + _table(("label", "precision", "recall", "F1", "support"), rows))
    return "\n".join(parts)


def evaluated_split(spec):
    """The split a run's classification report and confusion matrix are of, re-read as training
    read it: ("test", Examples) when the source has a test split, else ("validation", Examples)
    (split with `data.split_seed`, else `train.seed`), or None when there is neither."""
    if data.has_test_split(spec.data):
        return "test", data.load_examples(spec.data, "test")
    split_seed = spec.train.seed if spec.data.split_seed is None else spec.data.split_seed
    examples = data.load_examples(spec.data, "train", seed=split_seed)
    _, validation = data.train_validation_split(examples, spec.data.validation_split, split_seed)
    return ("validation", validation) if len(validation.texts) else None


def most_confident_errors(labels, probabilities, count=ERRORS_SHOWN):
    """Indices of the wrong predictions with the highest predicted probability, highest first
    (ties: the earlier example first).

    Args:
        labels: np.ndarray `(n,)`. True label ids.
        probabilities: np.ndarray `(n, classes)`. Predicted probabilities.
        count: int. Most indices returned.

    Returns:
        list of int.
    """
    predictions = np.argmax(probabilities, axis=-1)
    wrong = np.flatnonzero(predictions != labels)
    confidence = probabilities[wrong, predictions[wrong]]
    return [int(i) for i in wrong[np.argsort(-confidence, kind="stable")][:count]]


def _errors(run):
    found = evaluated_split(run.spec)
    if found is None:
        return "<p>no evaluation split (data.validation_split=0 and no test split)</p>"
    split, examples = found
    probabilities = predict_probabilities(run.model, examples.texts, run.spec.data.batch_size)  # (n, classes)
    chosen = most_confident_errors(examples.labels, probabilities)
    if not chosen:
        return f"<p>no errors on the {split} split ({len(examples.texts)} examples)</p>"
    explanations = explain_texts(run.model, [examples.texts[i] for i in chosen], run.label_names, steps=IG_STEPS)
    items = []
    for i, explanation in zip(chosen, explanations):
        true, predicted = run.label_names[examples.labels[i]], run.label_names[int(np.argmax(probabilities[i]))]
        items.append(
            f'<article class="error">\n<p class="error-meta">label <b>{html.escape(true)}</b> · predicted '
            f"<b>{html.escape(predicted)}</b> with probability {probabilities[i].max():.3f}</p>\n"
            f"{render_html_fragment(explanation)}\n</article>"
        )
    wrong = int((np.argmax(probabilities, axis=-1) != examples.labels).sum())
    intro = (
        f"<p>{wrong} of {len(examples.texts)} {split} examples are misclassified; the {len(chosen)} the model was "
        f"surest of, with integrated-gradients attributions ({IG_STEPS} steps) of the predicted label:</p>"
    )
    return "\n".join([intro, render_html_legend(), *items])


def _evaluations(files):
    rows = []
    for path in files:
        try:
            result = json.loads(path.read_text(encoding="utf-8"))
            rows.append((path.stem, result["data"], result["count"], result["accuracy"], result["macro_f1"]))
        except (OSError, ValueError, KeyError, TypeError) as error:
            rows.append((path.stem, f"unreadable ({type(error).__name__})", "", "", ""))
    return _table(("evaluation", "data", "examples", "accuracy", "macro F1"), rows)
