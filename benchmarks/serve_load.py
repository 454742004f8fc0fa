"""Serving an LSTM export: bounded load runs against `tfrnn serve` on loopback, over REST and over
gRPC, and in-process SavedModel throughput against `model.predict` on the same texts.

1. Trains the quickstart BiLSTM (or takes `--run`) and exports it. For each API (`--apis`, REST
   then gRPC), starts a fresh `tfrnn serve` in a subprocess on free ports and runs `--clients`
   concurrent clients for `--seconds`, each sending one review per request: REST posts
   `{"instances": [text]}`, gRPC calls PredictionService.Predict with a one-string TensorProto
   (the stubs of tensorflow-serving-api; one channel per client). Reports requests/s, p50 and p99
   latency, errors (non-200 answers, failed RPCs and failed connections; goal: zero) and the server
   process's peak RSS during the run (psutil, sampled every 50 ms; without psutil, the kernel's
   VmHWM from /proc/PID/status, the peak since the process started), and the CPU time the server
   and the clients spent per answered request (/proc/PID/stat, os.times).
   `--batching both` (default) loads each API four times, off, on, on, off: `--enable_batching`
   with `--batching-parameters-file` (else TF Serving's defaults). `--baseline CHECKOUT` also
   loads another tfrnn source checkout's own `tfrnn serve` over REST, interleaved with this one's
   (baseline, this, this, baseline): the goal of issue 12 compares with the server of commit
   095e927, where 556 requests/s were measured on a faster day of this machine.
2. In process: the SavedModel's `serving_default` on raw text against the run's Keras model
   (`model.predict` on the raw texts, its preprocessor included) at batch 1 and 256,
   interleaved A B B A; the ratio is SavedModel / predict throughput.

    python benchmarks/serve_load.py --markdown docs/benchmarks.md \
        --batching-parameters-file benchmarks/configs/batching_one_thread.config --baseline CHECKOUT
    (CHECKOUT: `git worktree add /tmp/old 095e927`)
"""

import argparse
import os
import re
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

MODEL = "lstm"


def server_command(root, port, grpc_port, batching=None):
    """`tfrnn serve` on `root`: REST on `port` and gRPC on `grpc_port`, both on loopback (the same
    command for both APIs, as `tfrnn serve` serves both by default; only the clients differ), with
    `--enable_batching` when `batching` (True: TF Serving's default parameters; a path: that
    `--batching_parameters_file`)."""
    return [
        "tfrnn",
        "serve",
        str(root),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--grpc-port",
        str(grpc_port),
        *(["--enable_batching"] if batching else []),
        *(["--batching_parameters_file", str(batching)] if batching not in (None, False, True) else []),
    ]


def wait_until_up(url, process, log_path, grpc_target=None, timeout=180):
    """Waits until the model answers its REST status (and a gRPC GetModelStatus when asked)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            sys.exit(f"tfrnn serve stopped: {Path(log_path).read_text()[-2000:]}")
        try:
            if httpx.get(url, timeout=2).status_code == 200 and (grpc_target is None or grpc_up(grpc_target)):
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    sys.exit("tfrnn serve did not come up")


def grpc_up(target):
    import grpc
    from tensorflow_serving.apis import get_model_status_pb2, model_service_pb2_grpc

    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = MODEL
    try:
        with grpc.insecure_channel(target) as channel:
            model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(request, timeout=2)
        return True
    except grpc.RpcError:
        return False


class PeakRss:
    """The peak resident memory of a process while the `with` block runs, in bytes: psutil
    sampled every 50 ms, or without psutil /proc/PID/status VmHWM (peak since the start)."""

    def __init__(self, pid):
        self.pid = pid
        self.peak = 0
        self.method = "psutil, sampled every 50 ms"
        self._stop = threading.Event()
        try:
            import psutil

            self._process = psutil.Process(pid)
        except ImportError:
            self._process = None
            self.method = "VmHWM of /proc/PID/status (peak since the server started)"

    def __enter__(self):
        if self._process is not None:
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self):
        while not self._stop.wait(0.05):
            try:
                self.peak = max(self.peak, self._process.memory_info().rss)
            except Exception:  # the process ended
                return

    def __exit__(self, *exc):
        self._stop.set()
        if self._process is not None:
            self._thread.join()
        else:
            self.peak = _vm_hwm(self.pid)


def _commit(checkout):
    """The short commit of a git checkout, or its folder name."""
    done = subprocess.run(["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return done.stdout.strip() or Path(checkout).name


def cpu_seconds(pid=None):
    """User + system CPU seconds of process `pid` so far (/proc/PID/stat), or of this process."""
    if pid is None:
        times = os.times()
        return times.user + times.system
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def _vm_hwm(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def rss_now(pid):
    """The resident memory of a process now, in bytes (0 when unknown)."""
    try:
        import psutil

        return psutil.Process(pid).memory_info().rss
    except ImportError:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def load_run_for(send, make_session, clients, seconds, texts):
    """`clients` threads sending one text per request for `seconds`: latencies and errors.

    Args:
        send: callable(session, text) -> bool, one request; False (or an exception) is an error.
        make_session: callable() -> a context manager, one per client (a connection).
    """
    latencies, errors, stop = [], [0], time.time() + seconds
    lock = threading.Lock()

    def client(index):
        with make_session() as session:
            i = index
            while time.time() < stop:
                started = time.perf_counter()
                try:
                    ok = send(session, texts[i % len(texts)])
                except Exception:
                    ok = False
                elapsed = time.perf_counter() - started
                with lock:
                    if ok:
                        latencies.append(elapsed)
                    else:
                        errors[0] += 1
                i += clients

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, errors[0]


def rest_client(port):
    url = f"http://127.0.0.1:{port}/v1/models/{MODEL}:predict"

    def send(session, text):
        return session.post(url, json={"instances": [text]}).status_code == 200

    return send, lambda: httpx.Client(timeout=30)


def grpc_client(grpc_port, texts):
    """One PredictRequest per text, built before the run (clients and server share the 2 cores)."""
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    requests = {}
    for text in texts:
        request = predict_pb2.PredictRequest()
        request.model_spec.name = MODEL
        request.inputs["text"].CopyFrom(tf.make_tensor_proto([text]))
        requests[text] = request

    class Session:
        def __enter__(self):
            self.channel = grpc.insecure_channel(f"127.0.0.1:{grpc_port}")
            self.stub = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)
            return self

        def __exit__(self, *exc):
            self.channel.close()

    def send(session, text):
        return "probabilities" in session.stub.Predict(requests[text], timeout=30).outputs

    return send, Session


def baseline_command(checkout, root, port, work):
    """`tfrnn serve` of another tfrnn source checkout (REST only), and the environment that makes
    Python import that checkout's `tfrnn` and `tfrnn_cli` (its cli/)."""
    links = work / "baseline-path"
    links.mkdir(exist_ok=True)
    for name, target in (("tfrnn", "tfrnn"), ("tfrnn_cli", "cli")):
        if not (links / name).exists():
            (links / name).symlink_to(Path(checkout).resolve() / target)
    command = [sys.executable, "-c", "from tfrnn_cli.main import main; main()", "serve", str(root)]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    return command, {**os.environ, "PYTHONPATH": str(links)}


def measure(api, root, texts, clients, seconds, work, batching=None, baseline=None):
    """A fresh `tfrnn serve` (with `--enable_batching` when `batching`; the one of the source
    checkout `baseline` instead, when given) under load on one API: a dict of figures."""
    port, grpc_port = free_ports(2)
    command, env = server_command(root, port, grpc_port, batching), None
    if baseline:
        command, env = baseline_command(baseline, root, port, work)
    log_path = work / f"serve-{api}.log"
    log = open(log_path, "w")  # a pipe nobody reads would fill up and stall the server
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        wait_until_up(
            f"http://127.0.0.1:{port}/v1/models/{MODEL}",
            server,
            log_path,
            None if baseline else f"127.0.0.1:{grpc_port}",
        )
        idle = rss_now(server.pid)
        send, session = rest_client(port) if api == "REST" else grpc_client(grpc_port, texts)
        cpu = (cpu_seconds(server.pid), cpu_seconds())
        with PeakRss(server.pid) as peak:
            latencies, errors = load_run_for(send, session, clients, seconds, texts)
        server_cpu, client_cpu = cpu_seconds(server.pid) - cpu[0], cpu_seconds() - cpu[1]
    finally:
        server.terminate()
        server.wait(60)
        log.close()
    p50, p99 = (np.percentile(latencies, q) * 1000 if latencies else float("nan") for q in (50, 99))
    shown = (
        ["CHECKOUT's tfrnn serve EXPORT_ROOT", *command[5:]] if baseline else ["tfrnn serve EXPORT_ROOT", *command[3:]]
    )
    command_text = re.sub(r"(--(grpc-)?port) [0-9]+", r"\1 PORT", " ".join(shown))
    return {
        "api": api,
        "server": f"baseline `{_commit(baseline)}`" if baseline else "this checkout",
        "batching": batching,
        "rate": len(latencies) / seconds,
        "p50": p50,
        "p99": p99,
        "errors": errors,
        "answered": len(latencies),
        "server_cpu_ms": server_cpu * 1000 / max(len(latencies), 1),
        "client_cpu_ms": client_cpu * 1000 / max(len(latencies), 1),
        "idle_mib": idle / 2**20,
        "peak_mib": peak.peak / 2**20,
        "rss_method": peak.method,
        "command": command_text,
    }


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
    parser.add_argument("--apis", default="REST,gRPC", help="comma-separated: REST, gRPC (default: both)")
    parser.add_argument("--skip-in-process", action="store_true", help="only the load runs")
    parser.add_argument(
        "--baseline",
        metavar="CHECKOUT",
        help="also load a tfrnn source checkout's own `tfrnn serve` over REST, interleaved with this one's "
        "(baseline, this, this, baseline; this one without batching)",
    )
    parser.add_argument("--batching-parameters-file", help="with batching: these parameters, not the defaults")
    parser.add_argument(
        "--batching",
        choices=["off", "on", "both"],
        default="both",
        help="run the server without and/or with --enable_batching (both: off, on, on, off per API)",
    )
    parser.add_argument("--markdown", metavar="PATH")
    args = parser.parse_args()
    apis = [api.strip() for api in args.apis.split(",") if api.strip()]
    unknown = set(apis) - {"REST", "gRPC"}
    if unknown:
        parser.error(f"unknown --apis {sorted(unknown)}: REST, gRPC")
    work = Path(tempfile.mkdtemp(prefix="serve-load-"))
    run_dir = (
        args.run or train(load_config(None, [f"output_dir={work}", f"run_name={MODEL}", "train.verbose=0"])).run_dir
    )
    export_dir = export_run(run_dir, work / "saved_models" / MODEL)
    texts = load_examples(load_config(None, []).data, "test").texts
    on = args.batching_parameters_file or True
    order = {"off": [None], "on": [on], "both": [None, on, on, None]}[args.batching]
    results = [
        measure(api, work / "saved_models", texts, args.clients, args.seconds, work, batching)
        for api in apis
        for batching in order
    ]
    if args.baseline:
        results += [
            measure("REST", work / "saved_models", texts, args.clients, args.seconds, work, baseline=baseline)
            for baseline in (args.baseline, None, None, args.baseline)
        ]
    for result in results:
        print(result)
    rows = []
    if not args.skip_in_process:
        run = load_run(run_dir)
        for batch in (1, 256):
            ours, keras_rate, ratio = in_process(run, export_dir, texts * (1 + 256 * 20 // len(texts)), batch)
            rows.append(f"| {batch} | {ours:,.0f} | {keras_rate:,.0f} | {ratio:.2f} |")
    load_rows = [
        f"| {r['api']} | {r['server']} | {'on' if r['batching'] else 'off'} | **{r['rate']:,.0f}** | {r['p50']:.1f} | {r['p99']:.1f} | {r['errors']} | {r['answered']:,} "
        f"| {r['server_cpu_ms']:.2f} | {r['client_cpu_ms']:.2f} "
        f"| {r['idle_mib']:,.0f} | {r['peak_mib']:,.0f} |"
        for r in results
    ]
    commands = sorted({f"`{r['command']}`" for r in results})  # one command (two with batching), whichever the API
    lines = [
        "## Serving an LSTM export (`benchmarks/serve_load.py`)",
        "",
        *header_lines(accelerator()),
        "- Model: the quickstart BiLSTM, exported; texts: the 400 embedded test reviews",
        f"- Load: a fresh {' / '.join(commands)} per API and run, in the order of the table "
        f"(batching: `--enable_batching`, {args.batching_parameters_file or 'TF Serving default parameters'}), "
        f"{args.clients} concurrent clients "
        f'for {args.seconds:.0f} s, one review per request; REST: row format (`{{"instances": [text]}}`, '
        "httpx, one connection per client); gRPC: `PredictionService.Predict` with a one-string "
        "TensorProto (tensorflow-serving-api stubs, one channel per client, requests built before the run)",
        f"- Server memory: resident set of the server process when idle (model loaded) and its peak "
        f"during the run ({results[0]['rss_method'] if results else 'n/a'})",
        "",
        "| API | server | batching | requests/s | p50 ms | p99 ms | errors | answered | server CPU ms/request "
        "| client CPU ms/request | RSS idle MiB | peak RSS MiB |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        *load_rows,
    ]
    if rows:
        lines += [
            "",
            "In process, texts/s (A B B A, medians); ratio = SavedModel / (preprocessor + `model.predict`):",
            "",
            "| batch | SavedModel `serving_default` | `model.predict` | ratio |",
            "|---:|---:|---:|---:|",
            *rows,
        ]
    lines += [
        "",
        "The load runs share the 2 cores between the clients (one Python process, 8 threads) and the "
        "server. In process, `model.predict` pays a fixed cost per call (a data adapter and a step function "
        "dispatch) that dominates at batch 1; the SavedModel is one concrete function on raw strings. Both "
        "include tokenisation. Each batch is its own call on both sides. With batching, concurrent requests "
        "share one call of the SavedModel (its cost hardly grows from 1 to 8 texts), which lowers the server's "
        "CPU time per request; the rest of it is HTTP (or gRPC) handling in Python.",
    ]
    publish("\n".join(lines), args.markdown, "serve_load")


if __name__ == "__main__":
    main()
