"""Serving an LSTM export: a bounded load run against `tfrnn serve` on loopback, and in-process
SavedModel throughput against `model.predict` on the same texts.

1. Trains the quickstart BiLSTM (or takes `--run`), exports it, starts `tfrnn serve` in a
   subprocess on a free port, and runs `--clients` concurrent clients for `--seconds`, each
   posting one review per request (`{"instances": [text]}`): requests/s, p50 and p99 latency,
   errors (non-200 answers and failed connections; goal: zero).
2. In process: the SavedModel's `serving_default` on raw text against the run's Keras model
   (`model.predict` on the raw texts, its preprocessor included) at batch 1 and 256,
   interleaved A B B A; the ratio is SavedModel / predict throughput.

    python benchmarks/serve_load.py --markdown docs/benchmarks.md
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
from markdown_report import accelerator, header_lines, publish

from tfrnn.config import load_config
from tfrnn.data import load_examples
from tfrnn.export import export_run
from tfrnn.runs import load_run
from tfrnn.training.train import train

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.fixtures import free_ports  # noqa: E402


def wait_until_up(url, process, log_path, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            sys.exit(f"tfrnn serve stopped: {Path(log_path).read_text()[-2000:]}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.5)
    sys.exit("tfrnn serve did not come up")


def load_run_for(url, texts, clients, seconds):
    """`clients` threads posting one text per request for `seconds`: latencies and errors."""
    latencies, errors, stop = [], [0], time.time() + seconds
    lock = threading.Lock()

    def client(index):
        with httpx.Client(timeout=30) as session:
            i = index
            while time.time() < stop:
                started = time.perf_counter()
                try:
                    ok = session.post(url, json={"instances": [texts[i % len(texts)]]}).status_code == 200
                except httpx.HTTPError:
                    ok = False
                with lock:
                    latencies.append(time.perf_counter() - started) if ok else None
                    errors[0] += not ok
                i += clients

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, errors[0]


def in_process(run, export_dir, texts, batch, rounds=3, batches=20):
    """Texts/s of the SavedModel signature and of preprocessor + model.predict, A B B A rounds."""
    import tensorflow as tf

    serve = tf.saved_model.load(str(export_dir)).signatures["serving_default"]
    chunks = [texts[i : i + batch] for i in range(0, batch * batches, batch)]
    chunks = [c for c in chunks if len(c) == batch] or [texts[:batch]]

    def saved_model():
        for chunk in chunks:
            serve(text=tf.constant(chunk))

    def keras_predict():
        for chunk in chunks:
            run.model.predict(chunk, batch_size=batch, verbose=0)  # raw texts: the model preprocesses them

    contenders, timings = (saved_model, keras_predict), ([], [])
    for contender in contenders:
        contender()  # warm-up
    for _ in range(rounds):
        for index in (0, 1, 1, 0):
            started = time.perf_counter()
            contenders[index]()
            timings[index].append(time.perf_counter() - started)
    count = batch * len(chunks)
    ratios = [k / s for s, k in zip(timings[0][::2], timings[1][::2])]
    return count / statistics.median(timings[0]), count / statistics.median(timings[1]), statistics.median(ratios)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", help="a finished run directory (default: train the quickstart BiLSTM)")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--markdown", metavar="PATH")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="serve-load-"))
    run_dir = args.run or train(load_config(None, [f"output_dir={work}", "run_name=lstm", "train.verbose=0"])).run_dir
    export_dir = export_run(run_dir, work / "saved_models" / "lstm")
    texts = load_examples(load_config(None, []).data, "test").texts
    port = free_ports(1)[0]
    log = open(work / "serve.log", "w")  # a pipe nobody reads would fill up and stall the server
    server = subprocess.Popen(
        ["tfrnn", "serve", str(work / "saved_models"), "--port", str(port)], stdout=log, stderr=subprocess.STDOUT
    )
    try:
        wait_until_up(f"http://127.0.0.1:{port}/v1/models/lstm", server, work / "serve.log")
        latencies, errors = load_run_for(
            f"http://127.0.0.1:{port}/v1/models/lstm:predict", texts, args.clients, args.seconds
        )
    finally:
        server.terminate()
        server.wait(60)
    p50, p99 = (np.percentile(latencies, q) * 1000 for q in (50, 99))
    run = load_run(run_dir)
    rows = []
    for batch in (1, 256):
        ours, keras_rate, ratio = in_process(run, export_dir, texts * (1 + 256 * 20 // len(texts)), batch)
        rows.append(f"| {batch} | {ours:,.0f} | {keras_rate:,.0f} | {ratio:.2f} |")
    section = "\n".join(
        [
            "## Serving an LSTM export (`benchmarks/serve_load.py`)",
            "",
            *header_lines(accelerator()),
            "- Model: the quickstart BiLSTM, exported; texts: the 400 embedded test reviews",
            f"- Load: `tfrnn serve` on 127.0.0.1, {args.clients} concurrent clients for {args.seconds:.0f} s, "
            "one review per request, row format",
            "",
            f"**{len(latencies) / args.seconds:,.0f} requests/s, p50 {p50:.1f} ms, p99 {p99:.1f} ms, "
            f"{errors} errors** ({len(latencies):,} answered).",
            "",
            "In process, texts/s (A B B A, medians); ratio = SavedModel / (preprocessor + `model.predict`):",
            "",
            "| batch | SavedModel `serving_default` | `model.predict` | ratio |",
            "|---:|---:|---:|---:|",
            *rows,
        ]
    )
    publish(section, args.markdown, "serve_load")


if __name__ == "__main__":
    main()
