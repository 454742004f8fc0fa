"""Train-step throughput of tfrnn's BertClassifier against keras-hub's BertTextClassifier.

Both are BERT-base sized by default (12 layers, hidden 768, 12 heads, feed-forward 3072, vocab
30,522), randomly initialised with the same weights, and train with AdamW (lr 2e-5) on one
fixed batch of token ids (sequence 128) through `train_on_batch`. tfrnn's model is what
`tfrnn train --model bert` builds (exact GELU, as Hugging Face checkpoints say; [CLS] pooling);
keras-hub's uses the tanh GELU. Both heads give logits and train with the same from-logits loss.
They are timed interleaved, A B B A per round, in one process; the ratio is tfrnn / keras-hub
throughput (> 1: tfrnn faster), median of per-round ratios, from wall and from process CPU time.
Shared machinery: bench_layers.py.

    python benchmarks/bench_bert.py --markdown docs/benchmarks.md                # CPU, batch 8
    KERAS_BACKEND=jax python benchmarks/bench_bert.py --gpu-config --markdown docs/benchmarks.md
"""

import argparse
import sys

import keras
import keras_hub
import numpy as np
from bench_layers import interleaved_rounds, reset_keras, summarize
from markdown_report import accelerator, header_lines, publish

from tfrnn.models.bert import BertBackbone, BertClassifier

BASE = dict(
    vocabulary_size=30522, num_layers=12, num_heads=12, hidden_dim=768, intermediate_dim=3072, max_sequence_length=512
)
CONFIGS = {
    "cpu": dict(batch=8, steps=2, rounds=3, warmup=2, precision="float32"),
    "gpu": dict(batch=256, steps=20, rounds=5, warmup=5, precision="mixed_bfloat16"),
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gpu-config", action="store_true", help="batch 256, bf16, 20 steps per segment")
    parser.add_argument("--batch", type=int, help="batch size (cpu 8, gpu 256)")
    parser.add_argument("--sequence", type=int, default=128, help="sequence length (default 128)")
    parser.add_argument("--layers", type=int, default=12, help="transformer blocks (default 12)")
    parser.add_argument("--steps", type=int, help="train steps per segment (cpu 2, gpu 20)")
    parser.add_argument("--rounds", type=int, help="A B B A rounds (cpu 3, gpu 5)")
    parser.add_argument("--warmup", type=int, help="untimed steps per model first (cpu 2, gpu 5)")
    parser.add_argument("--precision", choices=["float32", "mixed_bfloat16", "mixed_float16"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--markdown", metavar="PATH", help="write the results into this markdown file")
    args = parser.parse_args(argv)
    for key, value in CONFIGS["gpu" if args.gpu_config else "cpu"].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def build_models(args):
    """(tfrnn BertClassifier, keras-hub BertTextClassifier), same weights, both giving logits,
    compiled alike."""
    reset_keras(args.seed)
    keras.config.set_dtype_policy(args.precision)
    config = {**BASE, "num_layers": args.layers}
    stock = keras_hub.models.BertBackbone(**config)
    ours = BertBackbone(**config, activation="gelu")
    ours.set_weights(stock.get_weights())
    models = (
        BertClassifier(ours, num_classes=2, pooling="cls", dropout=0.1),
        keras_hub.models.BertTextClassifier(stock, num_classes=2, preprocessor=None, activation=None),
    )
    jit = keras.backend.backend() == "jax"
    for model in models:
        model.compile(
            optimizer=keras.optimizers.AdamW(learning_rate=2e-5, weight_decay=0.01),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            jit_compile=jit,
        )
    return models


def make_batch(args):
    """One batch of BERT inputs (full-length rows) and labels, NumPy int32."""
    rng = np.random.default_rng(args.seed)
    shape = (args.batch, args.sequence)
    x = {
        "token_ids": rng.integers(1000, BASE["vocabulary_size"], size=shape, dtype=np.int32),
        "segment_ids": np.zeros(shape, np.int32),
        "padding_mask": np.ones(shape, np.int32),
    }
    return x, rng.integers(0, 2, size=args.batch, dtype=np.int32)


def report(args, row, device):
    return "\n".join(
        [
            f"## BERT train step: tfrnn BertClassifier vs keras-hub BertTextClassifier ({section_key(args)})",
            "",
            *header_lines(device),
            f"- Model: BERT {args.layers} layers, hidden 768, 12 heads, feed-forward 3072, vocab 30,522; "
            f"sequence {args.sequence}, batch {args.batch}, {args.precision}, AdamW, "
            f"jit_compile={keras.backend.backend() == 'jax'}, `train_on_batch` on one in-memory batch",
            f"- Timing: {args.warmup} warm-up steps per model, then {args.rounds} rounds of A B B A "
            f"(tfrnn, keras-hub, keras-hub, tfrnn), {args.steps} steps per segment",
            "",
            "| tfrnn ex/s | keras-hub ex/s | ratio, wall | wall range | ratio, CPU |",
            "|---:|---:|---:|---:|---:|",
            f"| {row['tfrnn']:,.1f} | {row['keras']:,.1f} | {row['wall_ratio']:.3f} "
            f"| {row['wall_range'][0]:.2f}-{row['wall_range'][1]:.2f} | {row['cpu_ratio']:.3f} |",
        ]
    )


def section_key(args):
    return f"bench_bert_{keras.backend.backend()}_{'gpu' if args.gpu_config else 'cpu'}"


def main(argv=None):
    args = parse_args(argv)
    if keras.backend.backend() not in ("tensorflow", "jax"):
        sys.exit("set KERAS_BACKEND to tensorflow or jax")
    device = accelerator()
    print(f"Keras backend: {keras.backend.backend()}, device: {device}", flush=True)
    rounds = interleaved_rounds(build_models(args), make_batch(args), args, "BERT")
    row = summarize(argparse.Namespace(label="BERT"), rounds, 2 * args.steps * args.batch)
    section = report(args, row, device)
    publish(section, args.markdown, section_key(args))


if __name__ == "__main__":
    main()
