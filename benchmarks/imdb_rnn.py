"""IMDB sentiment with the default BiLSTM recipe: validation accuracy and time per epoch.

Trains on ../shared/data/imdb/train.csv (25,000 reviews; 5,000 held out for validation) with
benchmarks/configs/imdb_bilstm.yaml through `tfrnn.training.train`, the same code path as
`tfrnn train`, and writes the figures into docs/benchmarks.md.

    python benchmarks/imdb_rnn.py --markdown docs/benchmarks.md
    python benchmarks/imdb_rnn.py model.cell=gru      # any dotted override
"""

import argparse
import csv
import json
import tempfile
from pathlib import Path

from markdown_report import accelerator, header_lines, write_markdown

from tfrnn.config import load_config, to_yaml
from tfrnn.training import train

HERE = Path(__file__).resolve().parent
DEFAULT_CONFIG = HERE / "configs" / "imdb_bilstm.yaml"
DEFAULT_DATA = HERE.parent.parent / "shared" / "data" / "imdb" / "train.csv"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="dotted config overrides")
    parser.add_argument("--config", default=str(DEFAULT_CONFIG), help="recipe YAML")
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="IMDB train.csv (text,label)")
    parser.add_argument("--output-dir", help="where the run directory goes (default: a temp dir)")
    parser.add_argument("--markdown", metavar="PATH", help="write the results into this file")
    return parser.parse_args(argv)


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


def report(config, metrics, run_dir):
    """The markdown section: setup, headline figures and the per-epoch table."""
    validation = metrics["validation"]
    m, d, t = config.model, config.data, config.train
    lines = [
        "## IMDB, default BiLSTM recipe (`benchmarks/imdb_rnn.py`)",
        "",
        *header_lines(accelerator()),
        f"- Data: {metrics['train_examples']:,} training reviews, {validation['count']:,} held out "
        f"(seeded, stratified); vocabulary {metrics['vocabulary_size']:,} words, max_len {d.max_len}, "
        f"batch {d.batch_size}, length bucketing {d.bucket}",
        f"- Model: Embedding {m.embedding_dim} -> {'Bi' if m.bidirectional else ''}{m.cell.upper()} "
        f"{m.units} x {m.num_layers} -> {m.pooling} pooling -> dropout {m.dropout} -> softmax; "
        f"{metrics['parameters']:,} parameters",
        f"- Training: {t.optimizer} lr {t.learning_rate} with {t.decay} decay (warmup ratio "
        f"{t.warmup_ratio}), clipnorm {t.clipnorm}, max {t.epochs} epochs; the epoch with the best "
        f"{t.monitor} is kept (early stopping patience {t.early_stopping_patience})",
        "",
        f"**Validation accuracy {validation['accuracy']:.4f}** (macro F1 {validation['macro_f1']:.4f}) "
        f"after {metrics['epochs_run']} epochs; training took {metrics['train_seconds'] / 60:.1f} min, "
        f"{metrics['seconds_per_epoch']:.0f} s per epoch (wall time, validation included).",
        "",
        epoch_table(Path(run_dir) / "history.csv"),
    ]
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    output_dir = args.output_dir or tempfile.mkdtemp(prefix="imdb_rnn-")
    config = load_config(args.config, [f"data.path={args.data}", f"output_dir={output_dir}",
                                       "train.verbose=2", *args.overrides])
    print(to_yaml(config))
    result = train(config)
    print(json.dumps({k: v for k, v in result.metrics["validation"].items()
                      if k in ("accuracy", "macro_f1")}, indent=2))
    section = report(config, result.metrics, result.run_dir)
    print(section)
    if args.markdown:
        write_markdown(args.markdown, "imdb_rnn", section)
        print(f"Wrote {args.markdown}")


if __name__ == "__main__":
    main()
