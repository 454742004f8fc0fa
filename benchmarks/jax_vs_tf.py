"""JAX vs TensorFlow on this machine: time per epoch, accuracy and step compilations (issue 13).

Trains the quickstart (`tfrnn train` with no options) and the IMDB recipe
(benchmarks/configs/imdb_bilstm.yaml on ../shared/data/imdb/train.csv), each run a fresh
`tfrnn train` process under KERAS_BACKEND=tensorflow or jax (and, for the quickstart,
TensorFlow with `train.jit_compile=true`), the variants interleaved A B B A in every round so
that drift cancels. Reports the median seconds per epoch, its ratio to TensorFlow's (median of
the per-round ratios), accuracy, epochs and how often the train and test steps were traced
(compiled). Goal: JAX within 1.5x of TensorFlow's epoch time, the same accuracy within noise,
at most 2 x (length buckets) traces of each step per run.

    python benchmarks/jax_vs_tf.py --markdown docs/benchmarks.md
    python benchmarks/jax_vs_tf.py --workloads imdb train.epochs=2 data.limit=5000
"""

import argparse
import importlib.metadata
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import recipe
import yaml
from markdown_report import accelerator, header_lines, publish

from tfrnn.data.pipeline import bucket_boundaries

VARIANTS = {  # name: (KERAS_BACKEND, overrides)
    "tensorflow": ("tensorflow", []),
    "jax": ("jax", []),  # train.jit_compile=auto resolves to true under JAX
    "tensorflow+xla": ("tensorflow", ["train.jit_compile=true"]),
}
WORKLOADS = {  # name: (tfrnn train arguments, default variants, default rounds)
    "quickstart": ([], ["tensorflow", "jax", "tensorflow+xla"], 2),
    "imdb": (
        [
            "--config",
            str(recipe.HERE / "configs" / "imdb_bilstm.yaml"),
            f"data.path={recipe.SHARED_DATA / 'imdb' / 'train.csv'}",
        ],
        ["tensorflow", "jax"],
        1,
    ),
}
TFRNN = shutil.which("tfrnn", path=str(Path(sys.executable).parent)) or "tfrnn"


def run(arguments, variant, output_dir, name):
    """Trains once in a fresh `tfrnn train` process and reads its run directory.

    Args:
        arguments: list of str. `tfrnn train` options and overrides of the workload.
        variant: str. A `VARIANTS` name.
        output_dir: str. Parent of the run directory.
        name: str. The run directory's name.

    Returns:
        dict: the run's figures, or {"error": exit status and stderr tail} when it failed.
    """
    backend, overrides = VARIANTS[variant]
    command = [TFRNN, "train", "--output-dir", output_dir, "--name", name, *arguments, "train.verbose=0", *overrides]
    done = subprocess.run(command, env={**os.environ, "KERAS_BACKEND": backend}, capture_output=True, text=True)
    run_dir = Path(output_dir) / name
    if done.returncode or not (run_dir / "metrics.json").exists():
        tail = (done.stderr or done.stdout).strip().splitlines()[-20:]
        return {"error": "\n".join([f"exit status {done.returncode}: {' '.join(command)}", *tail])}
    metrics = json.loads((run_dir / "metrics.json").read_text())
    spec = yaml.safe_load((run_dir / "config.yaml").read_text())
    return {
        "seconds_per_epoch": metrics["seconds_per_epoch"],
        "epochs": metrics["epochs_run"],
        "validation": metrics["validation"]["accuracy"],
        "test": metrics.get("test", {}).get("accuracy"),
        "traces": metrics.get("step_traces", {}),
        "jit": str(spec["train"]["jit_compile"]).lower(),
        "buckets": len(bucket_boundaries(spec["data"]["max_len"])),
    }


def spread(values, fmt):
    """The median of `values`, with their range when they differ; "—" without values."""
    if not values:
        return "—"
    low, high = min(values), max(values)
    middle = format(statistics.median(values), fmt)
    return middle if low == high else f"{middle} ({low:{fmt}}–{high:{fmt}})"


def round_means(runs):
    """{round: mean seconds per epoch of that round's successful runs} from [(round, figures), ...]."""
    seconds = {}
    for r, figures in runs:
        if "error" not in figures:
            seconds.setdefault(r, []).append(figures["seconds_per_epoch"])
    return {r: statistics.mean(s) for r, s in seconds.items()}


def table(runs):
    """Markdown rows, one per variant, from `runs`: {variant: [(round, figures), ...]}."""
    rows = [
        "| variant | jit | s/epoch | vs TF | validation acc. | test acc. | epochs | step traces (max) "
        "| buckets | traces <= 2 x buckets | runs ok |",
        "|---|---|---:|---:|---:|---:|---:|---|---:|---|---:|",
    ]
    tf = round_means(runs.get("tensorflow", []))
    for variant, variant_runs in runs.items():
        ok = [f for _, f in variant_runs if "error" not in f]
        means = round_means(variant_runs)
        ratios = [means[r] / tf[r] for r in means if r in tf]
        traces = {k: max(f["traces"].get(k, 0) for f in ok) for k in sorted({k for f in ok for k in f["traces"]})}
        buckets = max((f["buckets"] for f in ok), default=0)
        within = ("yes" if max(traces.values()) <= 2 * buckets else "**no**") if traces else "—"
        rows.append(
            f"| {variant} | {'/'.join(sorted({f['jit'] for f in ok})) or '—'} "
            f"| {spread([f['seconds_per_epoch'] for f in ok], '.2f')} "
            f"| {format(statistics.median(ratios), '.2f') + 'x' if ratios else '—'} "
            f"| {spread([f['validation'] for f in ok], '.4f')} "
            f"| {spread([f['test'] for f in ok if f['test'] is not None], '.4f')} "
            f"| {spread([f['epochs'] for f in ok], 'g')} "
            f"| {', '.join(f'{k} {v}' for k, v in traces.items()) or '—'} | {buckets or '—'} | {within} "
            f"| {len(ok)}/{len(variant_runs)} |"
        )
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="dotted config overrides for every run")
    parser.add_argument("--workloads", default="quickstart,imdb", help="comma-separated: " + ", ".join(WORKLOADS))
    parser.add_argument("--variants", help="comma-separated, for every workload: " + ", ".join(VARIANTS))
    parser.add_argument("--rounds", type=int, help="A B B A rounds (default: quickstart 2, imdb 1)")
    parser.add_argument("--markdown", metavar="PATH", help="write the results into this file")
    args = parser.parse_args(argv)
    workloads = args.workloads.split(",")
    chosen = args.variants.split(",") if args.variants else None
    for name, known in [*((w, WORKLOADS) for w in workloads), *((v, VARIANTS) for v in chosen or [])]:
        if name not in known:
            parser.error(f"unknown {name!r}: expected one of {', '.join(known)}")
    output_dir = tempfile.mkdtemp(prefix="jax_vs_tf-")
    print(f"run directories under {output_dir}", file=sys.stderr)
    lines = [
        "## JAX vs TensorFlow (`benchmarks/jax_vs_tf.py`)",
        "",
        *header_lines(accelerator()),
        "- Backends: "
        + ", ".join(f"{p} {importlib.metadata.version(p)}" for p in ("tensorflow", "jax", "jaxlib"))
        + "; each run a fresh `tfrnn train` process with KERAS_BACKEND set, `train.verbose=0`"
        + (f", overrides `{' '.join(args.overrides)}`" if args.overrides else ""),
        "- s/epoch: median over runs of `seconds_per_epoch` (wall time of `model.fit` / epochs, "
        "compilation and validation included), range in brackets; vs TF: median over rounds of "
        "(the round's mean s/epoch / TensorFlow's); rounds interleave the variants A B B A",
        "- Step traces: times each step was traced (compiled) in a run, the most of any run; goal "
        "at most 2 x the length buckets (`bucket_boundaries(data.max_len)`) each",
    ]
    failures = []
    for workload in workloads:
        arguments, default_variants, default_rounds = WORKLOADS[workload]
        variants = chosen or default_variants
        rounds = args.rounds or default_rounds
        order = [*variants, *reversed(variants)]
        runs = {v: [] for v in variants}
        for r in range(rounds):
            for i, variant in enumerate(order):
                name = f"{workload}-{variant.replace('+', '-')}-r{r}-{i}"
                print(f"[{workload} round {r + 1}/{rounds}, {i + 1}/{len(order)}] {variant}: {name}", file=sys.stderr)
                figures = run([*arguments, *args.overrides], variant, output_dir, name)
                runs[variant].append((r, figures))
                if "error" in figures:
                    failures.append(f"{workload} {variant} ({name}): {figures['error']}")
                    print(f"  FAILED: {figures['error']}", file=sys.stderr)
                else:
                    print(
                        f"  {figures['seconds_per_epoch']} s/epoch, validation {figures['validation']:.4f}, "
                        f"traces {figures['traces'] or '—'}",
                        file=sys.stderr,
                    )
        repo = recipe.HERE.parent
        command = " ".join(["tfrnn train", *arguments]).replace(f"{repo}/", "").replace(f"{repo.parent}/", "../")
        lines += ["", f"### {workload}: `{command}`, {rounds} round(s) of {' '.join(order)}", "", *table(runs)]
    if failures:
        lines += ["", "Failed runs (stderr tail):", "", "```", *failures, "```"]
    publish("\n".join(lines), args.markdown, "jax_vs_tf")


if __name__ == "__main__":
    main()
