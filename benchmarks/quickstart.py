"""The quickstart data (embedded movie reviews): accuracy and time of each model kind.

Trains the default recipe (`tfrnn train` with no options) and the same with each other cell
and the feed-forward baseline, on the 2,000 embedded training sentences (200 held out for
validation), and reports validation and test accuracy (400 held-out sentences).

    python benchmarks/quickstart.py --markdown docs/benchmarks.md
"""

import argparse
import tempfile

from markdown_report import accelerator, header_lines, publish

from tfrnn.config import load_config
from tfrnn.training.train import train

VARIANTS = {
    "BiLSTM (default)": [],
    "BiGRU": ["model.rnn.cell=gru"],
    "BiSimpleRNN": ["model.rnn.cell=simple_rnn"],
    "BiFeedback (LSTM base)": ["model.rnn.cell=feedback"],
    "feed-forward baseline": ["model.kind=feedforward"],
}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--markdown", metavar="PATH", help="write the results into this file")
    args = parser.parse_args(argv)
    output_dir = tempfile.mkdtemp(prefix="quickstart-")
    rows = [
        "| model | validation acc. | test acc. | test macro F1 | epochs | seconds |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for label, overrides in VARIANTS.items():
        config = load_config(None, [f"output_dir={output_dir}", "train.verbose=0", *overrides])
        metrics = train(config).metrics
        rows.append(
            f"| {label} | {metrics['validation']['accuracy']:.4f} | {metrics['test']['accuracy']:.4f} "
            f"| {metrics['test']['macro_f1']:.4f} | {metrics['epochs_run']} | {metrics['train_seconds']:.0f} |"
        )
        print(rows[-1], flush=True)
    section = "\n".join(
        [
            "## Quickstart data: embedded movie reviews (`benchmarks/quickstart.py`)",
            "",
            *header_lines(accelerator()),
            "- Data: 1,800 training and 200 validation sentences (seeded, stratified), 400 test "
            "sentences; defaults otherwise (`tfrnn train` with one override per row)",
            "- Seconds: wall time of `model.fit` (validation included), early stopping on val_loss",
            "",
            *rows,
        ]
    )
    publish(section, args.markdown, "quickstart")


if __name__ == "__main__":
    main()
