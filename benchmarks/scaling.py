"""Training throughput with 1 and 2 replicas: `tfrnn train --strategy one-device` against
`--strategy mirrored --devices /cpu:0,/cpu:1` (two logical CPUs), same data and global batch.

Each run is a fresh `tfrnn train` process (logical devices are fixed when TensorFlow starts),
in the order A B B A per round; examples/s is training examples x epochs / training seconds
from the run's metrics.json (validation included), median over rounds.

    python benchmarks/scaling.py --markdown docs/benchmarks.md
    python benchmarks/scaling.py --devices /gpu:0,/gpu:1   # on a machine with two GPUs
"""

import argparse
import json
import statistics
import subprocess
import tempfile
from pathlib import Path

from markdown_report import accelerator, header_lines, publish

RECIPE = [
    "data.limit=2000",
    "data.max_len=100",
    "data.batch_size=64",
    "train.epochs=2",
    "train.early_stopping_patience=0",
    "train.tensorboard=false",
    "train.verbose=0",
]


def run(strategy, devices, output_dir, name, model):
    """One `tfrnn train` process; returns training examples/s from its metrics.json."""
    command = [
        "tfrnn",
        "train",
        "--strategy",
        strategy,
        "--output-dir",
        output_dir,
        "--name",
        name,
        "--model",
        model,
        *RECIPE,
    ]
    if strategy == "mirrored":
        command += ["--devices", devices]
    if model == "bert":
        command += ["model.units=64", "model.num_layers=2", "train.learning_rate=1e-3"]
    subprocess.run(command, check=True, capture_output=True)
    metrics = json.loads((Path(output_dir) / name / "metrics.json").read_text())
    return metrics["train_examples"] * metrics["epochs_run"] / metrics["train_seconds"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", default="/cpu:0,/cpu:1", help="the mirrored replicas' devices")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--markdown", metavar="PATH")
    args = parser.parse_args()
    output_dir = tempfile.mkdtemp(prefix="scaling-")
    rows = []
    for model in ("rnn", "bert"):
        results = {"one-device": [], "mirrored": []}
        for index in range(args.rounds):
            for strategy in ("one-device", "mirrored", "mirrored", "one-device"):
                name = f"{model}-{strategy}-{index}-{len(results[strategy])}"
                results[strategy].append(run(strategy, args.devices, output_dir, name, model))
                print(f"{model} {strategy}: {results[strategy][-1]:.0f} examples/s", flush=True)
        one, two = (statistics.median(results[k]) for k in ("one-device", "mirrored"))
        rows.append(f"| {model} | {one:,.0f} | {two:,.0f} | {two / one:.2f} |")
    replicas = len(args.devices.split(","))
    section = "\n".join(
        [
            "## Replica scaling: one device vs mirrored (`benchmarks/scaling.py`)",
            "",
            *header_lines(accelerator()),
            f"- Runs: `tfrnn train` on the embedded reviews (1,800 training), 2 epochs, global batch 64, max_len 100; "
            f"rnn: the default BiLSTM; bert: 2 blocks of hidden 64 from scratch. Mirrored: {replicas} "
            f"replicas on `{args.devices}`. {args.rounds} rounds of A B B A, medians",
            "",
            f"| model | 1 replica ex/s | {replicas} replicas ex/s | ratio |",
            "|---|---:|---:|---:|",
            *rows,
        ]
    )
    publish(section, args.markdown, "scaling")


if __name__ == "__main__":
    main()
