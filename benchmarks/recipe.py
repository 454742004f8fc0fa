"""Shared by the recipe benchmarks (imdb_rnn.py, chnsenticorp_rnn.py, sst2_bert.py): train a YAML recipe
through `tfrnn.training.train`, the code path of `tfrnn train`, and report it in markdown."""

import argparse
import csv
import tempfile
from pathlib import Path

from markdown_report import accelerator, header_lines, publish

from tfrnn.config import load_config, to_yaml
from tfrnn.runs import read_spec
from tfrnn.training.train import train

HERE = Path(__file__).resolve().parent
SHARED_DATA = HERE.parent.parent / "shared" / "data"


def epoch_table(history_csv):
    """Markdown rows of the per-epoch log: epoch, loss, accuracy, val_loss, val_accuracy."""
    with open(history_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    lines = ["| epoch | loss | accuracy | val_loss | val_accuracy |", "|---:|---:|---:|---:|---:|"]
    for row in rows:
        lines.append(
            f"| {int(row['epoch']) + 1} | {float(row['loss']):.4f} | {float(row['accuracy']):.4f} "
            f"| {float(row['val_loss']):.4f} | {float(row['val_accuracy']):.4f} |"
        )
    return "\n".join(lines)


def _model_line(m):
    """The model's layers, from the run spec's model section."""
    c = m.section
    if m.kind == "bert":
        encoder = (
            "/".join(Path(c.checkpoint).parts[-2:]) if c.checkpoint else f"from scratch, {c.layers} x {c.hidden_dim}"
        )
        return f"BERT encoder `{encoder}` -> {c.pooling} pooling -> dropout {c.dropout}"
    if m.kind == "feedforward":
        return f"Embedding {c.embedding_dim} -> mean -> Dense {c.hidden_units} -> dropout {c.dropout}"
    return (
        f"Embedding {c.embedding_dim} -> {'Bi' if c.bidirectional else ''}{c.cell.upper()} {c.units} x {c.layers} "
        f"-> {c.pooling} pooling -> dropout {c.dropout}"
    )


def _tokens_line(m):
    """The tokenizer, from the run spec's model section."""
    if m.kind == "bert":
        return "WordPiece vocabulary"
    return f"{m.section.tokenizer} vocabulary"


def report(title, spec, metrics, run_dir):
    """The markdown section: setup, headline figures and the per-epoch table.

    Args:
        title: str. The section's heading.
        spec: tfrnn.config.RunConfig. The run spec (the run directory's config.yaml).
        metrics: dict. The run's metrics.json.
        run_dir: str or Path. The run directory (its history.csv).
    """
    validation = metrics["validation"]
    m, d, t = spec.model, spec.data, spec.train
    test = metrics.get("test")
    test_count = f", {test['count']:,} test" if test else ""
    test_accuracy = f", **test accuracy {test['accuracy']:.4f}**" if test else ""
    lines = [
        f"## {title}",
        "",
        *header_lines(accelerator()),
        f"- Data: {metrics['train_examples']:,} training texts, {validation['count']:,} held out for "
        f"validation (seeded, stratified){test_count}; "
        f"{_tokens_line(m)} {metrics['vocabulary_size']:,}, max_len {d.max_len}, batch "
        f"{d.batch_size}, length bucketing {d.bucket}",
        f"- Model: {_model_line(m)} -> dense logits; {metrics['parameters']:,} parameters",
        f"- Training: {t.optimizer} lr {t.learning_rate} with {t.decay} decay (warmup ratio "
        f"{t.warmup_ratio}), clipnorm {t.clipnorm}, max {t.epochs} epochs; the epoch with the best "
        f"{t.monitor} is kept (early stopping patience {t.early_stopping_patience})",
        "",
        f"**Validation accuracy {validation['accuracy']:.4f}** (macro F1 {validation['macro_f1']:.4f})"
        f"{test_accuracy} after {metrics['epochs_run']} epochs; training took {metrics['train_seconds'] / 60:.1f} min, "
        f"{metrics['seconds_per_epoch']:.0f} s per epoch (wall time, validation included), "
        f"{metrics['train_examples'] * metrics['epochs_run'] / metrics['train_seconds']:.0f} training examples/s.",
        "",
        epoch_table(Path(run_dir) / "history.csv"),
    ]
    return "\n".join(lines)


def main(description, key, title, recipe, data_overrides, argv=None):
    """Parses the command line, trains the recipe and prints (or writes) its section.

    Args:
        description: str. The script's --help text.
        key: str. The markdown section's name.
        title: str. The section's heading.
        recipe: Path. The default recipe YAML.
        data_overrides: list of str. Dotted overrides pointing the recipe at its data files.
        argv: list of str or None. Command-line arguments; None reads `sys.argv[1:]`.
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="dotted config overrides")
    parser.add_argument("--config", default=str(recipe), help="recipe YAML")
    parser.add_argument("--output-dir", help="where the run directory goes (default: a temp dir)")
    parser.add_argument("--markdown", metavar="PATH", help="write the results into this file")
    args = parser.parse_args(argv)
    output_dir = args.output_dir or tempfile.mkdtemp(prefix=f"{key}-")
    config = load_config(args.config, [*data_overrides, f"output_dir={output_dir}", "train.verbose=2", *args.overrides])
    print(to_yaml(config))
    result = train(config)
    _, spec = read_spec(result.run_dir)  # resolved: labels, BERT's case rules
    section = report(title, spec, result.metrics, result.run_dir)
    publish(section, args.markdown, key)
