"""ULMFiT on IMDB (issue 15): pretrain an AWD-LSTM language model on IMDB text, fine-tune a
classifier on it, against the from-scratch BiLSTM recipe on the same split.

1. Pretrain: `tfrnn.training.pretrain.pretrain` (the code path of `tfrnn pretrain`) on the texts of
   ../shared/data/imdb/unsup.csv and ../shared/data/imdb/train.csv (labels unused; a seeded sample
   of `--lm-docs` documents of them), 5% of the documents held out for the exact perplexity.
2. Fine-tune: `tfrnn.training.train.train` with `init_from` (`tfrnn train --init-from`): ULMFiT's
   recipe (concat pooling, gradual unfreezing, discriminative rates / 2.6 per layer, slanted
   triangular rates) on train.csv with 5,000 of the 25,000 reviews held out: the split of
   benchmarks/configs/imdb_bilstm.yaml (validation_split 0.2, the same seed), so
3. the from-scratch BiLSTM (`--scratch`: that recipe, run here; else its figure in
   docs/benchmarks.md) is validated on the same 5,000 reviews.
Reports perplexity, validation accuracy and the time of each stage.

    python benchmarks/ulmfit_imdb.py --markdown docs/benchmarks.md
    python benchmarks/ulmfit_imdb.py --lm-run /tmp/ulmfit/lm     # reuse a pretrained model
    python benchmarks/ulmfit_imdb.py --lm-docs 2000 --lm-epochs 1 --clf-epochs 1 --train-limit 2000  # a pilot
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import recipe
from markdown_report import accelerator, header_lines, publish

from tfrnn.config import load_config
from tfrnn.training.pretrain import pretrain
from tfrnn.training.train import train

IMDB = recipe.SHARED_DATA / "imdb"


def log(line):
    print(line, file=sys.stderr, flush=True)


def pretrain_stage(args, output_dir):
    overrides = [
        f"data.sources=[{IMDB / 'unsup.csv'},{IMDB / 'train.csv'}]",
        f"data.limit={args.lm_docs}",
        f"data.batch_size={args.lm_batch}",
        f"data.max_len={args.window}",
        f"model.rnn.vocab_size={args.vocab}",
        f"model.rnn.embedding_dim={args.embedding}",
        f"model.rnn.units={args.units}",
        f"model.rnn.layers={args.layers}",
        f"model.rnn.sampled={args.sampled}",
        f"train.epochs={args.lm_epochs}",
        f"train.learning_rate={args.lm_lr}",
        "train.verbose=2",
        f"output_dir={output_dir}",
        "run_name=lm",
    ]
    return pretrain(load_config(None, overrides, task="pretrain"), log=log).run_dir


def classify_stage(args, lm_run, output_dir):
    overrides = [
        f"init_from={lm_run}",
        f"data.path={IMDB / 'train.csv'}",
        "data.max_len=400",
        f"data.batch_size={args.clf_batch}",
        f"train.epochs={args.clf_epochs}",
        f"train.learning_rate={args.clf_lr}",
        "train.verbose=2",
        f"output_dir={output_dir}",
        "run_name=ulmfit",
    ]
    if args.train_limit:
        overrides.append(f"data.limit={args.train_limit}")
    # The data of the from-scratch recipe (imdb_bilstm.yaml: its labels, its split, the default seed).
    data_keys = ["data.source=file", "data.labels=[neg,pos]", "data.validation_split=0.2"]
    return train(load_config(None, [*data_keys, *overrides]), log=log)


def scratch_stage(args, output_dir):
    overrides = [f"data.path={IMDB / 'train.csv'}", "train.verbose=2", f"output_dir={output_dir}", "run_name=scratch"]
    if args.train_limit:
        overrides.append(f"data.limit={args.train_limit}")
    return train(load_config(recipe.HERE / "configs" / "imdb_bilstm.yaml", overrides), log=log)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lm-docs", type=int, default=30000, help="documents to pretrain on (of 75,000)")
    parser.add_argument("--lm-epochs", type=int, default=1)
    parser.add_argument("--lm-lr", type=float, default=3e-3)
    parser.add_argument("--lm-batch", type=int, default=64)
    parser.add_argument("--window", type=int, default=70)
    parser.add_argument("--vocab", type=int, default=30000)
    parser.add_argument("--embedding", type=int, default=128)
    parser.add_argument("--units", type=int, default=256)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--sampled", type=int, default=1024)
    parser.add_argument("--clf-epochs", type=int, default=4)
    parser.add_argument("--clf-lr", type=float, default=1e-2)
    parser.add_argument("--clf-batch", type=int, default=64)
    parser.add_argument("--train-limit", type=int, default=None, help="IMDB training reviews (a pilot)")
    parser.add_argument("--lm-run", help="a finished pretrain run to fine-tune (skips stage 1)")
    parser.add_argument("--scratch", action="store_true", help="also run the from-scratch BiLSTM recipe")
    parser.add_argument("--output-dir", default=None)
    parser.add_argument("--markdown", default=None, help="write the section into this file")
    args = parser.parse_args()
    output_dir = Path(args.output_dir or tempfile.mkdtemp(prefix="ulmfit-"))

    started = time.time()
    lm_run = Path(args.lm_run) if args.lm_run else pretrain_stage(args, output_dir)
    lm_seconds = time.time() - started
    lm = json.loads((lm_run / "metrics.json").read_text())
    started = time.time()
    ulmfit = classify_stage(args, lm_run, output_dir)
    clf_seconds = time.time() - started
    rows = [
        f"| ULMFiT: pretrained LSTM, fine-tuned | {ulmfit.metrics['validation']['accuracy']:.2%} "
        f"| {lm['perplexity']:.1f} | {lm_seconds / 60:.1f} + {clf_seconds / 60:.1f} min |"
    ]
    if args.scratch:
        started = time.time()
        scratch = scratch_stage(args, output_dir)
        rows.append(
            f"| from scratch: BiLSTM recipe (`imdb_bilstm.yaml`) | {scratch.metrics['validation']['accuracy']:.2%} "
            f"| - | {(time.time() - started) / 60:.1f} min |"
        )
    spec = load_config(lm_run / "config.yaml", task="pretrain")
    m = spec.model.rnn
    section = "\n".join(
        [
            "## ULMFiT on IMDB: pretrain, then fine-tune (`benchmarks/ulmfit_imdb.py`)",
            "",
            *header_lines(accelerator()),
            f"- Language model: AWD-LSTM, embedding {m.embedding_dim} (tied), {m.layers} x LSTM {m.units}, "
            f"vocabulary {lm['vocabulary_size']:,}, softmax sampled over {m.sampled} words; "
            f"{lm['train_documents']:,} documents ({lm['train_tokens']:,} tokens) of unsup.csv + train.csv, "
            f"{spec.train.epochs} epoch(s), {lm['tokens_per_second']:,.0f} tokens/s; held-out perplexity "
            f"{lm['perplexity']:.1f} (exact, {lm['held_out_tokens']:,} tokens)",
            f"- Classifier: {ulmfit.metrics['train_examples']:,} training reviews, 5,000 held out "
            f"(the split of imdb_bilstm.yaml); concat pooling, gradual unfreezing, rates / 2.6 per layer, "
            f"slanted triangular, {args.clf_epochs} epochs at peak {args.clf_lr}",
            "",
            "| model | validation accuracy | LM perplexity | time |",
            "|---|---:|---:|---:|",
            *rows,
        ]
    )
    publish(section, args.markdown, "ulmfit_imdb")


if __name__ == "__main__":
    main()
