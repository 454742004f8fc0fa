"""Shared by the recipe benchmarks (imdb_rnn.py, chnsenticorp_rnn.py, sst2_bert.py): train a YAML recipe
through `tfrnn.training.train`, the code path of `tfrnn train`, and report it in markdown."""

import argparse
import csv
import tempfile
from pathlib import Path

from markdown_report import accelerator, header_lines, publish

from tfrnn.config import load_config, to_yaml
from tfrnn.training import train

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
    if m.kind == "bert":
        return f"BERT encoder `{'/'.join(Path(m.checkpoint).parts[-2:]) if m.checkpoint else 'from scratch'}`"
    return f"Embedding {m.embedding_dim} -> {'Bi' if m.bidirectional else ''}{m.cell.upper()} {m.units} x {m.num_layers}"


def report(title, config, metrics, run_dir):
    """The markdown section: setup, headline figures and the per-epoch table."""
    validation = metrics["validation"]
    m, d, t = config.model, config.data, config.train
    test = metrics.get("test")
    test_count = f", {test['count']:,} test" if test else ""
    test_accuracy = f", **test accuracy {test['accuracy']:.4f}**" if test else ""
    lines = [
        f"## {title}",
        "",
        *header_lines(accelerator()),
        f"- Data: {metrics['train_examples']:,} training texts, {validation['count']:,} held out for "
        f"validation (seeded, stratified){test_count}; "
        f"{d.tokenizer} vocabulary {metrics['vocabulary_size']:,}, max_len {d.max_len}, batch "
        f"{d.batch_size}, length bucketing {d.bucket}",
        f"- Model: {_model_line(m)} -> {m.pooling} pooling -> dropout {m.dropout} -> softmax; "
        f"{metrics['parameters']:,} parameters",
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
    config = load_config(
        args.config, [*data_overrides, f"output_dir={output_dir}", "train.verbose=2", *args.overrides]
    )
    print(to_yaml(config))
    result = train(config)
    section = report(title, config, result.metrics, result.run_dir)
    publish(section, args.markdown, key)
