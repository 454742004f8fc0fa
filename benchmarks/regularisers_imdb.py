"""Against overfitting on IMDB (issue 16): each remedy alone and combined, on the BiLSTM recipe.

Trains benchmarks/configs/imdb_bilstm.yaml on ../shared/data/imdb/train.csv (25,000 reviews,
5,000 held out) through `tfrnn.training.train`, the code path of `tfrnn train`, once per
variant (the recipe; FGM; VAT; VAT with the 50,000 unlabelled reviews; label smoothing; EDA
augmentation; a combination; the recipe with seeds 1 and 2 for an ensemble of 3 seeds), then
averages the three seeds' probabilities on the held-out reviews. `--variants tuned` runs
`tfrnn tune` over benchmarks/configs/imdb_space.yaml (its trial budget) and reports the best trial. `--step-timing` measures the
train step of FGM, PGD and VAT against plain training, interleaved in one process (A B B A).

Runs land in --output-dir and are reused when finished, so variants can be added in several
invocations; the table covers every finished variant.

    python benchmarks/regularisers_imdb.py --variants recipe seed1 seed2 --output-dir runs/regularisers
    python benchmarks/regularisers_imdb.py --variants fgm vat --step-timing --markdown docs/benchmarks.md
"""

import argparse
import csv
import json
import time
from pathlib import Path

import numpy as np
import recipe
from markdown_report import accelerator, header_lines, publish

from tfrnn import data
from tfrnn.config import load_config
from tfrnn.runs import load_run
from tfrnn.training import reports
from tfrnn.training.train import train

KEY = "regularisers_imdb"
TRAIN_CSV = recipe.SHARED_DATA / "imdb" / "train.csv"
UNSUP_CSV = recipe.SHARED_DATA / "imdb" / "unsup.csv"
RECIPE = recipe.HERE / "configs" / "imdb_bilstm.yaml"
SEEDS = ("recipe", "seed1", "seed2")  # the ensemble's members
SPACE = recipe.HERE / "configs" / "imdb_space.yaml"


def variants(output_dir, epsilon):
    """variant name -> its overrides of the recipe."""
    fgm = ["train.adversarial.method=fgm", f"train.adversarial.epsilon={epsilon}"]
    vat = ["train.adversarial.method=vat", f"train.adversarial.epsilon={epsilon}"]
    augment = [
        "data.augment.deletion=0.1",
        "data.augment.swap=0.1",
        "data.augment.synonym=0.1",
        f"data.augment.neighbours_from={output_dir / 'recipe'}",
    ]
    return {
        "recipe": [],
        "seed1": ["train.seed=1", "data.split_seed=42"],  # the recipe's held-out reviews
        "seed2": ["train.seed=2", "data.split_seed=42"],
        "fgm": fgm,
        "vat": vat,
        "vat_unlabelled": [*vat, f"train.adversarial.unlabelled={UNSUP_CSV}"],
        "smoothing": ["train.label_smoothing=0.1"],
        "augment": augment,
        "fgm_smoothing": [*fgm, "train.label_smoothing=0.1"],
    }


def run_variant(name, overrides, output_dir):
    """The variant's metrics.json, training it first unless its run finished before."""
    metrics = output_dir / name / "metrics.json"
    if not metrics.exists():
        config = load_config(
            RECIPE,
            [f"data.path={TRAIN_CSV}", f"output_dir={output_dir}", f"run_name={name}", "train.verbose=2", *overrides],
        )
        train(config)
    return json.loads(metrics.read_text())


def tuned(output_dir):
    """Runs (or resumes) the search over benchmarks/configs/imdb_space.yaml in OUTPUT/tune."""
    from tfrnn.tuning import tune

    tune_dir = output_dir / "tune"
    tune(SPACE, output_dir=tune_dir, resume=(tune_dir / "search.json").exists())


def tuned_row(output_dir):
    """The best trial of the search, if any finished: (its metrics.json, its values, trials run)."""
    table = output_dir / "tune" / "results.csv"
    if not table.exists():
        return None
    with open(table, newline="") as f:
        rows = [row for row in csv.DictReader(f) if row["status"] == "completed"]
    if not rows:
        return None
    best = rows[0]
    keys = [k for k in best if "." in k]  # the space's dotted keys
    metrics = json.loads((Path(best["run_dir"]) / "metrics.json").read_text())
    return metrics, {k: best[k] for k in keys}, len(rows)


def validation_examples(run_dir):
    """The held-out reviews of a run (its own seeded split of train.csv)."""
    spec = load_run(run_dir).spec
    seed = spec.train.seed if spec.data.split_seed is None else spec.data.split_seed
    examples = data.load_examples(spec.data, "train", seed=seed)
    return data.train_validation_split(examples, spec.data.validation_split, seed)[1]


def ensemble_accuracy(output_dir):
    """Accuracy of the mean probabilities of the three seeds, and of each, on the held-out
    reviews they share (`data.split_seed`)."""
    examples = validation_examples(output_dir / "recipe")
    probabilities = {name: load_run(output_dir / name).probabilities(examples.texts) for name in SEEDS}
    mean = np.mean(list(probabilities.values()), axis=0)
    accuracy = {name: float(np.mean(p.argmax(-1) == examples.labels)) for name, p in probabilities.items()}
    result = reports.classification_metrics(examples.labels, mean, examples.label_names)
    return result["accuracy"], accuracy


def step_timing(output_dir, rounds=4, steps=5):
    """Seconds per train step of FGM, PGD-3 and VAT over plain training, A B B A in one process:
    the recipe's model (its run's vocabulary) on one batch of 64 reviews of 400 tokens."""
    import keras

    from tfrnn.config import AdversarialConfig
    from tfrnn.models import build_classifier
    from tfrnn.training.adversarial import enable_adversarial
    from tfrnn.training.losses import SparseCrossentropy

    spec = load_config(RECIPE, [f"data.path={TRAIN_CSV}"])
    preprocessor = load_run(output_dir / "recipe").model.preprocessor
    rng = np.random.default_rng(0)
    x = rng.integers(2, preprocessor.vocabulary_size, size=(spec.data.batch_size, spec.data.max_len)).astype("int32")
    y = rng.integers(0, 2, size=(spec.data.batch_size,)).astype("int32")

    def model(method):
        m = build_classifier(spec.model, preprocessor, 2)
        m.compile(optimizer="adam", loss=SparseCrossentropy())
        if method:
            enable_adversarial(m, AdversarialConfig(method=method, epsilon=1.0))
        m.train_on_batch(x, y)  # traced
        return m

    def seconds(m):
        started = time.perf_counter()
        for _ in range(steps):
            m.train_on_batch(x, y)
        return (time.perf_counter() - started) / steps

    plain = model(None)
    ratios = {}
    for method in ("fgm", "pgd", "vat"):
        adversarial = model(method)
        per_round = []
        for _ in range(rounds):
            a1, b1, b2, a2 = seconds(plain), seconds(adversarial), seconds(adversarial), seconds(plain)
            per_round.append((b1 + b2) / (a1 + a2))
        ratios[method] = float(np.median(per_round))
        keras.backend.clear_session()
    return ratios


def section(results, output_dir, ensemble, timing, epsilon):
    base = results["recipe"]["validation"]["accuracy"]
    lines = [
        "## Against overfitting on IMDB (`benchmarks/regularisers_imdb.py`)",
        "",
        *header_lines(accelerator()),
        "- Recipe: `benchmarks/configs/imdb_bilstm.yaml` (BiLSTM 64, dropout 0.5, AdamW, 4 epochs, best "
        "val_accuracy kept); 20,000 training reviews, 5,000 held out (seed 42)",
        f"- Adversarial epsilon {epsilon} (L2 per review, over all its tokens' embeddings), weight 1",
        "",
        "| variant | overrides | validation accuracy | vs recipe | s/epoch | epochs |",
        "|---|---|---:|---:|---:|---:|",
    ]
    table = variants(output_dir, epsilon)
    for name, metrics in results.items():
        accuracy = metrics["validation"]["accuracy"]
        shown = " ".join(f"`{o}`" for o in table[name] if "neighbours_from" not in o and "unlabelled=" not in o)
        lines.append(
            f"| {name} | {shown or '-'} | {accuracy:.2%} | {100 * (accuracy - base):+.2f} | "
            f"{metrics['seconds_per_epoch']:.0f} | {metrics['epochs_run']} |"
        )
    tuned_best = tuned_row(output_dir)
    if tuned_best is not None:
        metrics, values, trials = tuned_best
        accuracy = metrics["validation"]["accuracy"]
        shown = " ".join(f"`{k}={v}`" for k, v in values.items())
        lines.append(
            f"| tuned: best of {trials} trials (`tfrnn tune`, Bayesian) | {shown} | {accuracy:.2%} | "
            f"{100 * (accuracy - base):+.2f} | {metrics['seconds_per_epoch']:.0f} | {metrics['epochs_run']} |"
        )
    if ensemble is not None:
        mean, members = ensemble
        best = max(members.values())
        lines += [
            "",
            f"**Ensemble of 3 seeds** (mean probabilities): {mean:.2%} on the recipe's held-out reviews, "
            f"against {best:.2%} for its best member ({100 * (mean - best):+.2f}); members: "
            + ", ".join(f"{n} {a:.2%}" for n, a in members.items())
            + ".",
        ]
    if timing:
        lines += [
            "",
            "**Train step, adversarial / plain** (one batch of 64 x 400 tokens, A B B A medians): "
            + ", ".join(f"{m.upper()} {r:.2f}x" for m, r in timing.items()),
        ]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", nargs="*", default=[*variants(Path("."), 1.0), "tuned"])
    parser.add_argument("--epsilon", type=float, default=0.5, help="adversarial epsilon (L2 per review)")
    parser.add_argument("--output-dir", default="runs/regularisers")
    parser.add_argument("--step-timing", action="store_true")
    parser.add_argument("--markdown", metavar="PATH", help="write the results into this file")
    args = parser.parse_args()
    output_dir = Path(args.output_dir).resolve()
    table = variants(output_dir, args.epsilon)
    for name in args.variants:
        if name == "tuned":
            tuned(output_dir)
        else:
            run_variant(name, table[name], output_dir)
    results = {
        n: json.loads((output_dir / n / "metrics.json").read_text())
        for n in table
        if (output_dir / n / "metrics.json").exists()
    }
    ensemble = ensemble_accuracy(output_dir) if all(n in results for n in SEEDS) else None
    timing = step_timing(output_dir) if args.step_timing else None
    publish(section(results, output_dir, ensemble, timing, args.epsilon), args.markdown, KEY)


if __name__ == "__main__":
    main()
