"""LoRA vs full fine-tuning of a recurrent classifier, IMDB -> SST-2 (issue 14): accuracy, cost, speed.

1. Source: a BiLSTM trained on IMDB reviews by `tfrnn.training.train` (the code path of `tfrnn train`)
   with benchmarks/configs/imdb_bilstm.yaml on a seeded sample of `--source-limit` reviews of
   ../shared/data/imdb/train.csv (20% of them held out to pick the epoch), `--source-epochs` epochs;
   or an existing run directory (`--source-run`).
2. Transfer: for each variant, the same RNNClassifier architecture is built with the source run's
   preprocessor (its IMDB word vocabulary), every weight but the head is copied from the source
   model, and a new 2-class head is initialised (the same seed for every variant). It is then
   fine-tuned with `model.fit` (Adam, constant learning rate, clipnorm 1) on a seeded sample of
   `--limit` phrases of ../shared/data/sst2/train.csv, batched by `tfrnn.data.make_dataset`, for
   `--epochs` epochs, and evaluated on dev.csv (872 sentences) after the last epoch:
   - full fine-tuning: every weight trains;
   - LoRA: every weight is frozen except the head, then `enable_lora(rank)` adds a trainable
     low-rank update W + (alpha / rank) A B (alpha = rank, B starts at zero) to the embedding
     matrix (Keras' `Embedding.enable_lora`) and to the kernel and recurrent kernel of each
     direction's recurrent layer (`tfrnn.layers.ProjectedRNN.enable_lora`); also with the update
     on the recurrent layers only, to show what the embedding's factors (most of LoRA's) bring;
   - head only (linear probe): only the head trains, a reference.
   Reports dev accuracy, trainable parameters (% of the model's), the first epoch's wall time
   (tracing included) and seconds per epoch (the median of the later epochs' wall times).

    python benchmarks/peft_rnn.py --markdown docs/benchmarks.md
    python benchmarks/peft_rnn.py --source-run /tmp/peft_rnn-x/source   # reuse a source model
"""

import argparse
import json
import math
import statistics
import sys
import tempfile
import time

import keras
import recipe
import tensorflow as tf
from markdown_report import accelerator, header_lines, publish

from tfrnn import data
from tfrnn.config import DataConfig, load_config
from tfrnn.data.preprocessing import OOV_ID
from tfrnn.layers.base import ProjectedRNN
from tfrnn.models.peft import parameter_counts
from tfrnn.models.rnn_classifier import RNNClassifier
from tfrnn.runs import load_run, read_spec
from tfrnn.training.train import train

SST2 = recipe.SHARED_DATA / "sst2"
SEED = 0


def train_source(args):
    """Trains the IMDB source classifier (the imdb_bilstm recipe on a sample); returns its run directory."""
    overrides = [
        f"data.path={recipe.SHARED_DATA / 'imdb' / 'train.csv'}",
        f"data.limit={args.source_limit}",
        f"train.epochs={args.source_epochs}",
        f"output_dir={args.output_dir or tempfile.mkdtemp(prefix='peft_rnn-')}",
        "run_name=source",
        "train.verbose=2",
        "train.tensorboard=false",
        *args.overrides,
    ]
    config = load_config(recipe.HERE / "configs" / "imdb_bilstm.yaml", overrides)
    return train(config, log=lambda line: print(line, file=sys.stderr, flush=True)).run_dir


def transferred_model(source):
    """The source's architecture and preprocessor with every weight but the head copied, and a
    new 2-class head (`logits`, initialised afresh)."""
    model = RNNClassifier(**{**source.config, "num_classes": 2}, preprocessor=source.preprocessor)
    for layer in model.layers:
        if layer.weights and layer.name != "logits":
            layer.set_weights(source.get_layer(layer.name).get_weights())
    return model


def freeze_all_but_head(model):
    """Makes every variable non-trainable except the head's (`logits`); variable by variable, so
    that LoRA factors added afterwards train."""
    for variable in model.weights:
        variable.trainable = False
    for variable in model.get_layer("logits").weights:
        variable.trainable = True


def enable_lora(model, rank, embedding=True):
    """Freezes all but the head, then adds LoRA of `rank` to each recurrent layer's kernel and
    recurrent kernel (both directions) and, with `embedding`, to the embedding matrix."""
    freeze_all_but_head(model)
    if embedding:
        model.get_layer("embedding").enable_lora(rank)
    for layer in model._flatten_layers():
        if isinstance(layer, ProjectedRNN):
            layer.enable_lora(rank)


class EpochTimer(keras.callbacks.Callback):
    """Records the wall time of each epoch in `seconds`."""

    def on_train_begin(self, logs=None):
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self.started)


# name -> (how the transferred model is made trainable, learning rate argument).
VARIANTS = {
    "full fine-tuning": (lambda model, rank: None, "lr_full"),
    "LoRA (embedding + recurrent)": (enable_lora, "lr_lora"),
    "LoRA (recurrent only)": (lambda model, rank: enable_lora(model, rank, embedding=False), "lr_lora"),
    "head only (linear probe)": (lambda model, rank: freeze_all_but_head(model), "lr_lora"),
}


def fine_tune(source, name, train_ds, dev_ds, args):
    """Builds the transferred model, makes it trainable as variant `name` says, fits it; returns
    its figures (a dict)."""
    keras.utils.set_random_seed(SEED)  # the same head and dropout masks for every variant
    model = transferred_model(source)
    prepare, lr = VARIANTS[name]
    prepare(model, args.rank)
    trainable, total = parameter_counts(model)
    lora = sum(math.prod(v.shape) for v in model.trainable_weights if "lora" in v.path)
    model.compile(
        optimizer=keras.optimizers.Adam(getattr(args, lr), clipnorm=1.0),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        jit_compile=False,  # tfrnn's `auto` on CPU; batches come in many shapes
    )
    timer = EpochTimer()
    model.fit(train_ds, epochs=args.epochs, shuffle=False, callbacks=[timer], verbose=2)  # the pipeline shuffles
    _, accuracy = model.evaluate(dev_ds, verbose=0)
    return {
        "lr": getattr(args, lr),
        "dev": accuracy,
        "trainable": trainable,
        "lora": lora,
        "fraction": trainable / total,
        "first_epoch": timer.seconds[0],  # tracing included
        "seconds_per_epoch": statistics.median(timer.seconds[1:] or timer.seconds),
    }


def oov_rate(preprocessor, texts):
    """Share of the tokens of `texts` that the preprocessor's vocabulary maps to [UNK]."""
    unknown = tokens = 0
    for ids in preprocessor.batches(texts, 256).as_numpy_iterator():  # (batch, time), 0 = padding
        unknown += int((ids == OOV_ID).sum())
        tokens += int((ids != 0).sum())
    return unknown / tokens


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="dotted overrides of the source recipe")
    parser.add_argument("--source-run", help="reuse this finished run directory as the source model")
    parser.add_argument("--source-limit", type=int, default=10000, help="IMDB reviews for the source (seeded sample)")
    parser.add_argument("--source-epochs", type=int, default=3)
    parser.add_argument("--output-dir", help="where the source run goes (default: a new temp dir)")
    parser.add_argument("--limit", type=int, default=4000, help="SST-2 training phrases (seeded sample)")
    parser.add_argument("--epochs", type=int, default=3, help="fine-tuning epochs, every variant")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rank", type=int, default=8, help="LoRA rank (alpha = rank)")
    parser.add_argument("--lr-full", type=float, default=1e-3, help="learning rate of full fine-tuning")
    parser.add_argument("--lr-lora", type=float, default=3e-3, help="learning rate of LoRA and the linear probe")
    parser.add_argument("--markdown", metavar="PATH", help="write the results into this file")
    args = parser.parse_args()
    if args.source_run and args.overrides:
        parser.error("KEY=VALUE overrides shape the source's training; --source-run reuses a trained one")

    source_run = args.source_run or train_source(args)
    print(f"source run: {source_run}", file=sys.stderr, flush=True)
    paths, spec = read_spec(source_run)
    source = load_run(source_run).model
    source_metrics = json.loads(paths.metrics.read_text())

    config = DataConfig(
        source="file",
        path=str(SST2 / "train.csv"),
        test_path=str(SST2 / "dev.csv"),
        labels=["neg", "pos"],
        limit=args.limit,
        max_len=64,  # length buckets of 8 tokens; the source's preprocessor cuts at its own max_len
        batch_size=args.batch_size,
    )
    train_examples = data.load_examples(config, "train", seed=SEED)
    dev_examples = data.load_examples(config, "test")
    train_ds = data.make_dataset(train_examples, source.preprocessor, config, training=True, seed=SEED)
    steps = sum(1 for _ in train_ds)  # bucketing makes it data-dependent; fills the cache
    train_ds = train_ds.apply(tf.data.experimental.assert_cardinality(steps))
    dev_ds = data.make_dataset(dev_examples, source.preprocessor, config, training=False)

    figures = {}
    for name in VARIANTS:
        print(f"fine-tuning: {name}", file=sys.stderr, flush=True)
        figures[name] = f = fine_tune(source, name, train_ds, dev_ds, args)
        print(f"{name}: dev accuracy {f['dev']:.4f}, {f['trainable']:,} trainable", file=sys.stderr, flush=True)

    c = spec.model.section
    how = f"the run {source_run}" if args.source_run else " ".join(["imdb_bilstm.yaml", *args.overrides])
    validation = source_metrics["validation"]
    rows = [
        f"| {name} | {f['lr']:g} | {f['dev']:.2%} | {f['trainable']:,} ({f['fraction']:.2%}) "
        f"| {f['first_epoch']:.1f} | {f['seconds_per_epoch']:.1f} |"
        for name, f in figures.items()
    ]
    lora = figures["LoRA (embedding + recurrent)"]
    recurrent = figures["LoRA (recurrent only)"]["lora"]
    section = "\n".join(
        [
            "## LoRA vs full fine-tuning of a BiLSTM, IMDB -> SST-2 (`benchmarks/peft_rnn.py`)",
            "",
            *header_lines(accelerator()),
            f"- Source: Embedding {c.embedding_dim} -> {'Bi' if c.bidirectional else ''}{c.cell.upper()} {c.units} x "
            f"{c.layers} -> {c.pooling} pooling -> dropout {c.dropout} -> head; {source_metrics['parameters']:,} "
            f"parameters; trained on {source_metrics['train_examples']:,} IMDB reviews ({how}, "
            f"{source_metrics['epochs_run']} epochs, {source_metrics['seconds_per_epoch']:.0f} s/epoch), validation "
            f"accuracy {validation['accuracy']:.2%} on {validation['count']:,} held-out reviews",
            f"- Transfer: the source's word vocabulary ({source.preprocessor.vocabulary_size:,} tokens; "
            f"{oov_rate(source.preprocessor, dev_examples.texts):.1%} of SST-2 dev tokens are out of it) and every "
            "weight but the head; a new 2-class head, the same initial values for every variant",
            f"- Fine-tuning: {len(train_examples.texts):,} SST-2 training phrases (seeded sample), batch "
            f"{args.batch_size}, {args.epochs} epochs, Adam with a constant learning rate (in the table), clipnorm 1, "
            "dropout as in the source; accuracy on dev.csv (872) after the last epoch; one seed; s/epoch: median "
            "of the epochs after the first (whose time includes tracing)",
            f"- LoRA: rank {args.rank}, alpha {args.rank}, on the embedding matrix and on the kernel and recurrent "
            "kernel of each direction; every other weight frozen (biases included) except the head; the factors "
            f"hold {lora['lora']:,} parameters, {lora['lora'] - recurrent:,} of them the embedding's",
            "",
            "| variant | learning rate | SST-2 dev accuracy | trainable parameters | first epoch s | s/epoch |",
            "|---|---:|---:|---:|---:|---:|",
            *rows,
        ]
    )
    publish(section, args.markdown, "peft_rnn")


if __name__ == "__main__":
    main()
