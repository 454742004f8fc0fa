"""Train-step throughput of tfrnn's recurrent layers against their `keras.layers` counterparts.

Each pair (tfrnn layer A, Keras layer B) trains the same model, Embedding -> layer -> Dense(2)
with Adam on one fixed in-memory batch, through `model.train_on_batch`. Both models live in one
process and are timed interleaved: every round runs A, B, B, A, each segment `--steps` train steps,
so drift in the machine's load hits both alike. The report gives, per pair, the median
examples/s of each and the medians of the per-round ratios (tfrnn / keras throughput, > 1 means
tfrnn is faster), from wall time and from the process's CPU time (`time.process_time()`), which
is less sensitive to noisy neighbours on a shared CPU.

The Keras backend is the one `KERAS_BACKEND` names (tensorflow, jax or torch). Token ids are
NumPy arrays and tensorflow is imported only when it is the backend, so a JAX run never loads it.

`--masked` pads the batch as bucketed real text is padded: each example's length is drawn from
the word counts of the IMDB train reviews (`benchmarks/data/imdb_train_word_counts.txt`) that
fall in the top bucket, (T/2, T] with longer reviews truncated to T, and the Embedding masks the
right padding (`mask_zero=True`) for both layers. `--implementation` picks the tfrnn layers'
path: the backend's fused kernel where it can run (auto), or the equations.

    python benchmarks/bench_layers.py --markdown docs/benchmarks.md
    KERAS_BACKEND=jax python benchmarks/bench_layers.py --gpu-config --layers lstm gru --masked
"""

import argparse
import dataclasses
import functools
import pathlib
import random
import statistics
import sys
import time

import keras
import numpy as np
from markdown_report import accelerator, header_lines, write_markdown

import tfrnn.layers

VOCAB_SIZE = 20000
NUM_CLASSES = 2
SUPPORTED_BACKENDS = ("tensorflow", "jax", "torch")
WORD_COUNTS = pathlib.Path(__file__).parent / "data" / "imdb_train_word_counts.txt"

# Sizes and step counts of the two setups; explicit command-line flags override them.
CONFIGS = {
    "cpu": {"batch": 64, "time_steps": 200, "embed": 128, "units": 128, "steps": 10, "warmup": 3},
    "gpu": {"batch": 256, "time_steps": 256, "embed": 128, "units": 256, "steps": 50, "warmup": 3},
}


@dataclasses.dataclass(frozen=True)
class Pair:
    """A tfrnn layer and the Keras layer it is measured against.

    Args:
        label: str. Row name in the results table.
        tfrnn_layer: callable. `tfrnn_layer(units)` makes the tfrnn layer.
        keras_layer: callable. `keras_layer(units)` makes the Keras layer.
    """

    label: str
    tfrnn_layer: object
    keras_layer: object


PAIRS = {
    "simple_rnn": Pair("SimpleRNN vs SimpleRNN", tfrnn.layers.SimpleRNN, keras.layers.SimpleRNN),
    "lstm": Pair("LSTM vs LSTM", tfrnn.layers.LSTM, keras.layers.LSTM),
    "gru": Pair("GRU vs GRU", tfrnn.layers.GRU, keras.layers.GRU),
    "feedback": Pair(
        "Feedback(base='lstm') vs LSTM",
        functools.partial(tfrnn.layers.Feedback, base="lstm"),
        keras.layers.LSTM,
    ),
}


@dataclasses.dataclass
class Timing:
    """Time spent by one contender in one round.

    Args:
        wall: float. Seconds of wall time (`time.perf_counter`).
        cpu: float. Seconds of the process's CPU time, all threads (`time.process_time`).
    """

    wall: float = 0.0
    cpu: float = 0.0


def parse_args(argv=None):
    """Parses the command line and fills unset sizes from the chosen setup.

    Args:
        argv: list of str or None. The arguments; None reads `sys.argv[1:]`.

    Returns:
        `argparse.Namespace` with every size and step count set.
    """
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="The backend is chosen by the KERAS_BACKEND environment variable "
        f"({' or '.join(SUPPORTED_BACKENDS)}); the run prints the one in use.",
    )
    parser.add_argument(
        "--layers", nargs="+", choices=list(PAIRS), default=list(PAIRS), help="pairs to measure (default: all)"
    )
    parser.add_argument("--rounds", type=int, default=5, help="A B B A rounds per pair (default 5)")
    parser.add_argument("--steps", type=int, help="train steps per segment (cpu 10, gpu 50)")
    parser.add_argument("--warmup", type=int, help="untimed train steps per model first (default 3)")
    parser.add_argument("--batch", type=int, help="batch size (cpu 64, gpu 256)")
    parser.add_argument("--time-steps", type=int, help="sequence length (cpu 200, gpu 256)")
    parser.add_argument("--embed", type=int, help="embedding size (default 128)")
    parser.add_argument("--units", type=int, help="recurrent units (cpu 128, gpu 256)")
    parser.add_argument(
        "--jit", action="store_true", help="compile with jit_compile=True (XLA); the JAX backend always does"
    )
    parser.add_argument(
        "--gpu-config",
        action="store_true",
        help="the GPU setup: units 256, batch 256, T 256, 50 steps per segment (the issue's is --layers lstm)",
    )
    parser.add_argument(
        "--projection",
        choices=["auto", "hoisted", "per_step"],
        default="auto",
        help="input_projection of the tfrnn layers (default auto)",
    )
    parser.add_argument(
        "--implementation",
        choices=list(tfrnn.layers.fused.IMPLEMENTATIONS),
        default="auto",
        help="implementation of the tfrnn layers: the fused kernel where it can run (auto), or the equations; "
        "fused insists on it (LSTM and GRU only: --layers lstm gru)",
    )
    parser.add_argument(
        "--baseline",
        choices=["keras", "equations"],
        default="keras",
        help="what the tfrnn layers are measured against: keras.layers (default), or the same tfrnn layers "
        "on their equations (implementation='equations'), in the same process",
    )
    parser.add_argument(
        "--masked", action="store_true", help="right-padded batch of real IMDB lengths (top bucket), masked"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of weights and data (default 0)")
    parser.add_argument(
        "--markdown", metavar="PATH", help="write the results into this markdown file, between the bench_layers markers"
    )
    args = parser.parse_args(argv)
    for key, value in CONFIGS["gpu" if args.gpu_config else "cpu"].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if min(args.rounds, args.steps, args.batch, args.time_steps, args.embed, args.units) < 1:
        parser.error("--rounds, --steps and the sizes must be positive")
    if args.warmup < 0:
        parser.error("--warmup must not be negative")
    if args.masked and not len(bucket_lengths(args.time_steps)):
        parser.error(
            f"--masked: no IMDB review is longer than {args.time_steps // 2} words; use a smaller --time-steps"
        )
    return args


def reset_keras(seed):
    """Clears Keras' global state and seeds the generators a model build draws from.

    `keras.utils.set_random_seed` imports tensorflow whenever it is installed, so Python's and
    NumPy's generators are seeded directly: Keras' global seed generator, which the weight
    initializers use, takes its seed from Python's after `clear_session` drops it.

    Args:
        seed: int. The seed.
    """
    keras.backend.clear_session()
    keras.config.set_dtype_policy("float32")
    random.seed(seed)
    np.random.seed(seed)


def build_model(layer_fn, args):
    """Makes and compiles Embedding -> recurrent layer -> Dense(2 logits), with Adam.

    Args:
        layer_fn: callable. `layer_fn(units)` returns the recurrent layer.
        args: `argparse.Namespace`. Sizes and `jit`.

    Returns:
        A compiled `keras.Sequential`.
    """
    model = keras.Sequential(
        [
            keras.Input((args.time_steps,), dtype="int32"),
            keras.layers.Embedding(VOCAB_SIZE, args.embed, mask_zero=args.masked),
            layer_fn(args.units),
            keras.layers.Dense(NUM_CLASSES),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=uses_jit(args),
    )
    return model


def uses_jit(args):
    """XLA on JAX always, on TensorFlow with --jit; never torch.compile (Keras' Python loop on torch)."""
    return args.jit or keras.backend.backend() == "jax"


def make_batch(args):
    """Makes one random batch of token ids and labels, as NumPy arrays.

    Args:
        args: `argparse.Namespace`. Sizes and `seed`.

    Returns:
        `(x, y)`: int32 token ids `(batch, time_steps)` and int32 labels `(batch,)`; with
        `args.masked`, each row right-padded with zeros after its drawn length.
    """
    rng = np.random.default_rng(args.seed)
    x = rng.integers(1, VOCAB_SIZE, size=(args.batch, args.time_steps), dtype=np.int32)
    if args.masked:
        lengths = rng.choice(bucket_lengths(args.time_steps), size=args.batch)  # (batch,)
        x[np.arange(args.time_steps)[None, :] >= lengths[:, None]] = 0
    y = rng.integers(0, NUM_CLASSES, size=(args.batch,), dtype=np.int32)
    return x, y


def bucket_lengths(time_steps):
    """The IMDB train reviews' lengths in the top bucket (time_steps/2, time_steps], longer ones truncated."""
    counts = np.loadtxt(WORD_COUNTS, dtype=np.int64, comments="#")
    return np.minimum(counts[counts > time_steps // 2], time_steps)


def train_steps(model, batch, steps):
    """Runs `steps` train steps on one batch and times them.

    `train_on_batch` returns the loss as a Python float, so every step has finished
    on the device when the clock stops.

    Args:
        model: compiled `keras.Model`.
        batch: `(x, y)` NumPy arrays.
        steps: int. Number of train steps.

    Returns:
        `Timing` of the steps.
    """
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(steps):
        model.train_on_batch(*batch)
    return Timing(time.perf_counter() - wall, time.process_time() - cpu)


def time_pair(pair, args):
    """Measures one pair over `args.rounds` interleaved A B B A rounds.

    Args:
        pair: `Pair`. The layers.
        args: `argparse.Namespace`. Sizes, step counts, rounds and seed.

    Returns:
        List of `(tfrnn_timing, keras_timing)`, one per round, each summed over its two segments.
    """
    reset_keras(args.seed)
    tfrnn_layer = functools.partial(
        pair.tfrnn_layer, input_projection=args.projection, implementation=args.implementation
    )
    baseline = pair.keras_layer
    if args.baseline == "equations":
        baseline = functools.partial(pair.tfrnn_layer, input_projection=args.projection, implementation="equations")
    models = (build_model(tfrnn_layer, args), build_model(baseline, args))
    return interleaved_rounds(models, make_batch(args), args, pair.label)


def interleaved_rounds(models, batch, args, label):
    """Warms both models up, then times `args.rounds` rounds of A B B A segments.

    Args:
        models: (tfrnn model, keras model), compiled.
        batch: `(x, y)`. The one batch both train on.
        args: `argparse.Namespace`. `warmup`, `steps`, `rounds` and `batch`.
        label: str. Printed with each round's figures.

    Returns:
        List of `(tfrnn_timing, keras_timing)`, one per round, each summed over its two segments.
    """
    for model in models:
        train_steps(model, batch, args.warmup)
    rounds = []
    for index in range(args.rounds):
        timings = (Timing(), Timing())
        for contender in (0, 1, 1, 0):
            segment = train_steps(models[contender], batch, args.steps)
            timings[contender].wall += segment.wall
            timings[contender].cpu += segment.cpu
        rounds.append(timings)
        examples = 2 * args.steps * args.batch
        print(
            f"  {label} round {index + 1}/{args.rounds}: "
            f"tfrnn {examples / timings[0].wall:,.0f} ex/s, "
            f"keras {examples / timings[1].wall:,.0f} ex/s, "
            f"ratio wall {timings[1].wall / timings[0].wall:.3f}, "
            f"CPU {timings[1].cpu / timings[0].cpu:.3f}",
            flush=True,
        )
    return rounds


def summarize(pair, rounds, examples):
    """Reduces a pair's rounds to the figures of its table row.

    Args:
        pair: `Pair`. The layers.
        rounds: list of `(tfrnn_timing, keras_timing)`.
        examples: int. Examples each contender trained on per round.

    Returns:
        dict: label, median examples/s of each, and the medians (and the range of the
        wall-time one) of the per-round throughput ratios tfrnn / keras.
    """
    wall_ratios = [k.wall / t.wall for t, k in rounds]
    return {
        "label": pair.label,
        "tfrnn": statistics.median(examples / t.wall for t, _ in rounds),
        "keras": statistics.median(examples / k.wall for _, k in rounds),
        "wall_ratio": statistics.median(wall_ratios),
        "wall_range": (min(wall_ratios), max(wall_ratios)),
        "cpu_ratio": statistics.median(k.cpu / t.cpu for t, k in rounds),
    }


def format_table(rows, baseline="keras"):
    """Formats the summaries as a markdown table.

    Args:
        rows: list of dicts from `summarize`.

    Returns:
        str: the table, one line per pair.
    """
    lines = [
        f"| tfrnn vs {'keras.layers' if baseline == 'keras' else 'its equations'} | tfrnn ex/s | {baseline} ex/s "
        "| ratio, wall | wall range | ratio, CPU |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        low, high = row["wall_range"]
        lines.append(
            f"| {row['label']} | {row['tfrnn']:,.0f} | {row['keras']:,.0f} "
            f"| {row['wall_ratio']:.3f} | {low:.2f}-{high:.2f} | {row['cpu_ratio']:.3f} |"
        )
    return "\n".join(lines)


def report(args, rows, device):
    """Writes the markdown section: command, machine, versions, date, setup and results.

    Args:
        args: `argparse.Namespace`. The run's settings.
        rows: list of dicts from `summarize`.
        device: str. From `accelerator()`.

    Returns:
        str: the section, without markers.
    """
    jit = uses_jit(args)
    padding = "right-padded to real IMDB lengths (top bucket), masked" if args.masked else "no padding"
    lines = [
        f"## Recurrent layers: tfrnn vs {'keras.layers' if args.baseline == 'keras' else 'its equations'}, "
        f"train step ({section_key(args)})",
        "",
        *header_lines(device),
        f"- Model: Embedding({VOCAB_SIZE}, {args.embed}) -> layer({args.units}) -> "
        f"Dense({NUM_CLASSES}), Adam, float32, batch {args.batch}, T {args.time_steps}, "
        f"jit_compile={jit}, tfrnn input_projection={args.projection}, "
        f"tfrnn implementation={args.implementation}, {padding}, "
        "`train_on_batch` on one in-memory batch",
        f"- tfrnn's path: {tfrnn_path(args)}",
        f"- Timing: {args.warmup} warm-up steps per model, then {args.rounds} rounds of "
        f"A B B A (tfrnn, keras, keras, tfrnn), {args.steps} steps per segment; "
        "examples/s are medians over rounds",
        "- Ratios are tfrnn / baseline throughput (> 1: tfrnn faster), medians of per-round "
        "ratios, from wall time and from process CPU time (`time.process_time()`)",
    ]
    if device != "CPU":
        lines.append(
            "- On a GPU, CPU time counts host work only; `keras.layers.LSTM`/`GRU` use the fused "
            "cuDNN kernel only without a mask on JAX and PyTorch"
        )
    lines += ["", format_table(rows, args.baseline)]
    return "\n".join(lines)


def section_key(args):
    """Names the markdown section after the settings, so that each setup keeps its own."""
    jit = "_jit" if uses_jit(args) else ""
    gpu = "_gpu" if args.gpu_config else ""
    implementation = "" if args.implementation == "auto" else f"_{args.implementation}"
    masked = "_masked" if args.masked else ""
    if args.baseline == "equations":
        masked += "_vs_equations"
    return f"bench_layers_{keras.backend.backend()}_{args.projection}{jit}{gpu}{implementation}{masked}"


def main(argv=None):
    """Runs the benchmark and prints (and optionally writes) the results table.

    Args:
        argv: list of str or None. Command-line arguments; None reads `sys.argv[1:]`.
    """
    args = parse_args(argv)
    backend = keras.backend.backend()
    if backend not in SUPPORTED_BACKENDS:
        sys.exit(f"Unsupported backend {backend!r}: set KERAS_BACKEND to one of {SUPPORTED_BACKENDS}.")
    device = accelerator()
    print(f"Keras backend: {backend}, device: {device}, jit_compile={uses_jit(args)}", flush=True)
    print(f"tfrnn's path: {tfrnn_path(args)}", flush=True)
    examples = 2 * args.steps * args.batch
    rows = [summarize(PAIRS[name], time_pair(PAIRS[name], args), examples) for name in args.layers]
    print(format_table(rows, args.baseline))
    if args.markdown:
        write_markdown(args.markdown, section_key(args), report(args, rows, device))
        print(f"Wrote {args.markdown}")


def tfrnn_path(args):
    """Which path each measured tfrnn layer takes here: 'fused' or why it takes the equations."""
    paths = []
    for name in args.layers:
        layer = PAIRS[name].tfrnn_layer(args.units, implementation=args.implementation)
        layer.build((args.batch, args.time_steps, args.embed))
        reason = "equations requested" if args.implementation == "equations" else layer.fused_unavailable()
        paths.append(f"{name} {'fused' if layer.uses_fused() else f'equations ({reason})'}")
    return "; ".join(paths)


if __name__ == "__main__":
    main()
