"""Language-model training throughput (tokens/s): tfrnn's LSTM stack against the same model on
keras.layers.LSTM.

Both are `tfrnn.models.language_model.RNNLanguageModel` (embedding and locked dropouts, AR/TAR,
the tied output with the sampled softmax, stateful LSTMs); the Keras one only swaps the
recurrent class through the model's `recurrent_layer` hook, and starts from the same weights.
Both run with `weight_dropout=0`, since keras.layers.LSTM has no DropConnect; tfrnn with
DropConnect (`--weight-dropout`, 0 to skip) is a third contender, reported against Keras too.
They train with Adam through `train_on_batch` on one batch of random ids (the LSTM states carry
over from step to step, as in truncated BPTT), interleaved A B [C C] B A per round in one
process; a ratio is tfrnn / Keras throughput (> 1: tfrnn faster), the median of per-round
ratios. Shared machinery: bench_layers.py, markdown_report.py.

    python benchmarks/lm_throughput.py --small        # a quick run (vocab 2000, 128/256 wide, 2 layers)
    python benchmarks/lm_throughput.py                # AWD-LSTM sizes: vocab 30000, E 400, U 1152, 3 layers
"""

import argparse
import sys

import keras
import numpy as np
from bench_layers import Timing, reset_keras, summarize, train_steps
from markdown_report import accelerator, header_lines, publish

from tfrnn.models.language_model import RNNLanguageModel

DEFAULTS = dict(vocab=30000, embed=400, units=1152, layers=3, batch=32, bptt=70, sampled=1024, steps=2, rounds=3)
SMALL = dict(vocab=2000, embed=128, units=256, layers=2, batch=16, bptt=35, sampled=256, steps=5, rounds=5)
NAMES = ("tfrnn", "keras", "tfrnn+DropConnect")


class KerasLSTMLanguageModel(RNNLanguageModel):
    """The same language model on keras.layers.LSTM (no `weight_dropout`: Keras has no DropConnect)."""

    @classmethod
    def recurrent_layer(cls, units, weight_dropout, seed, name):
        return keras.layers.LSTM(units, return_sequences=True, stateful=True, seed=seed, name=name)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", action="store_true", help="quick sizes: " + str(SMALL))
    for key, value in DEFAULTS.items():
        parser.add_argument(f"--{key}", type=int, help=f"default {value} ({SMALL[key]} with --small)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per model first (default 2)")
    parser.add_argument("--weight-dropout", type=float, default=0.2, help="tfrnn's DropConnect contender; 0: skip")
    parser.add_argument("--jit", action="store_true", help="jit_compile=True on TensorFlow (always on JAX)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--markdown", metavar="PATH", help="write the results into this markdown file")
    args = parser.parse_args(argv)
    for key, value in (SMALL if args.small else DEFAULTS).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def build_models(args):
    """(tfrnn, Keras[, tfrnn with DropConnect]) language models, same weights, compiled alike."""
    reset_keras(args.seed)
    sizes = dict(
        vocab_size=args.vocab,
        embedding_dim=args.embed,
        units=args.units,
        num_layers=args.layers,
        batch_size=args.batch,
        sampled=args.sampled,
        seed=args.seed,
    )
    models = [RNNLanguageModel(**sizes, weight_dropout=0.0), KerasLSTMLanguageModel(**sizes, weight_dropout=0.0)]
    if args.weight_dropout:
        models.append(RNNLanguageModel(**sizes, weight_dropout=args.weight_dropout))
    for model in models:
        model.set_weights(models[0].get_weights())
        model.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=args.jit or keras.backend.backend() == "jax")
    return models


def make_batch(args):
    """(token ids, next ids), int32 `(batch, bptt)`."""
    rng = np.random.default_rng(args.seed)
    return tuple(rng.integers(2, args.vocab, size=(args.batch, args.bptt), dtype=np.int32) for _ in range(2))


def interleaved_rounds(models, batch, args):
    """Warm-up, then `args.rounds` rounds of A B [C C] B A segments of `args.steps` steps.

    Returns:
        List of per-round Timing lists, one per model, each summed over its two segments.
    """
    for model in models:
        train_steps(model, batch, args.warmup)
    order = list(range(len(models)))
    tokens = 2 * args.steps * args.batch * args.bptt
    rounds = []
    for index in range(args.rounds):
        timings = [Timing() for _ in models]
        for contender in order + order[::-1]:
            segment = train_steps(models[contender], batch, args.steps)
            timings[contender].wall += segment.wall
            timings[contender].cpu += segment.cpu
        rounds.append(timings)
        rates = ", ".join(f"{name} {tokens / t.wall:,.0f}" for name, t in zip(NAMES, timings))
        print(f"  round {index + 1}/{args.rounds}: tokens/s {rates}", flush=True)
    return rounds


def report(args, rows, device):
    lines = [
        f"## Language-model training throughput: tfrnn LSTM vs keras.layers.LSTM ({section_key(args)})",
        "",
        *header_lines(device),
        f"- Model: RNNLanguageModel, vocab {args.vocab:,}, embedding {args.embed}, {args.layers} x LSTM "
        f"{args.units}, batch {args.batch}, bptt {args.bptt}, sampled softmax {args.sampled}, Adam, "
        f"jit_compile={args.jit or keras.backend.backend() == 'jax'}, `train_on_batch` on one batch",
        f"- Timing: {args.warmup} warm-up steps per model, then {args.rounds} rounds of "
        f"{' '.join('ABC'[: len(rows) + 1])} {' '.join('ABC'[: len(rows) + 1][::-1])}, {args.steps} steps per segment",
        "",
        "| model | tokens/s | Keras tokens/s | ratio, wall | wall range | ratio, CPU |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        low, high = row["wall_range"]
        lines.append(
            f"| {row['label']} (weight_dropout {row['weight_dropout']}) | {row['tfrnn']:,.0f} | {row['keras']:,.0f} "
            f"| {row['wall_ratio']:.3f} | {low:.2f}-{high:.2f} | {row['cpu_ratio']:.3f} |"
        )
    return "\n".join(lines)


def section_key(args):
    return f"lm_throughput_{keras.backend.backend()}_{'small' if args.small else 'default'}"


def main(argv=None):
    args = parse_args(argv)
    if keras.backend.backend() not in ("tensorflow", "jax"):
        sys.exit("set KERAS_BACKEND to tensorflow or jax")
    device = accelerator()
    print(f"Keras backend: {keras.backend.backend()}, device: {device}", flush=True)
    rounds = interleaved_rounds(build_models(args), make_batch(args), args)
    tokens = 2 * args.steps * args.batch * args.bptt
    rows = []
    for index, weight_dropout in ((0, 0.0), (2, args.weight_dropout))[: 2 if args.weight_dropout else 1]:
        pair_rounds = [(timings[index], timings[1]) for timings in rounds]
        row = summarize(argparse.Namespace(label=NAMES[index]), pair_rounds, tokens)
        rows.append({**row, "weight_dropout": weight_dropout})
    publish(report(args, rows, device), args.markdown, section_key(args))


if __name__ == "__main__":
    main()
