"""Prometheus metrics of `tfrnn serve`, at TF Serving's path (`/monitoring/prometheus/metrics`)
and under TF Serving's names (tensorflow_serving/servables/tensorflow/util.cc), printed the way
its exporter prints them (tensorflow_serving/util/prometheus_exporter.cc: `/` becomes `:`,
counters without a `_total` suffix, histogram bounds in microseconds):

- `:tensorflow:serving:request_count{model_name, status}`: requests by their gRPC status name
  ("OK", "INVALID_ARGUMENT", "NOT_FOUND", ...). tfrnn adds the labels `version` (the version
  that answered; "" when none did) and `API` ("Predict", "Classify", "Regress",
  "GetModelMetadata", "GetModelStatus").
- `:tensorflow:serving:request_latency{model_name, API, entrypoint}`: wall time of a request in
  microseconds, buckets of TF Serving's `Exponential(10, 1.8, 33)`. tfrnn adds `version`.

Aggregations over TF Serving's labels (`sum by (model_name, status)`) give TF Serving's series.
The values live in a private prometheus-client registry, one per app.
"""

import threading

from prometheus_client import CollectorRegistry, Counter, Histogram

PATH = "/monitoring/prometheus/metrics"  # prometheus_exporter.cc kPrometheusPath
REQUEST_COUNT = ":tensorflow:serving:request_count"
REQUEST_LATENCY = ":tensorflow:serving:request_latency"
# monitoring::Buckets::Exponential(10, 1.8, 33): 10 * 1.8**i, then +Inf.
LATENCY_BUCKETS_US = tuple(10 * 1.8**i for i in range(33)) + (float("inf"),)


class ServingMetrics:
    """Request counts and latencies of one server."""

    def __init__(self):
        self.registry = CollectorRegistry(auto_describe=False)
        self._count = Counter(
            "request_count",
            "The total number of requests.",
            ["model_name", "version", "API", "status"],
            registry=self.registry,
        )
        self._latency = Histogram(
            "request_latency",
            "Distribution of wall time (in microseconds) for Tensorflow Serving request.",
            ["model_name", "version", "API", "entrypoint"],
            buckets=LATENCY_BUCKETS_US,
            registry=self.registry,
        )
        self._lock = threading.Lock()

    def record(self, model_name, version, api, status, seconds, entrypoint="REST"):
        """Counts one request and its latency.

        Args:
            model_name: str. The model the request named ("" when the path named none).
            version: int, str or None. The version that answered, if any.
            api: str. "Predict", "Classify", "Regress", "GetModelMetadata" or "GetModelStatus".
            status: str. The gRPC status code's name of the answer ("OK", "NOT_FOUND", ...).
            seconds: float. The request's wall time.
            entrypoint: str. "REST" or "GRPC".
        """
        version = "" if version is None else str(version)
        self._count.labels(model_name, version, api, status).inc()
        self._latency.labels(model_name, version, api, entrypoint).observe(seconds * 1e6)

    def render(self):
        """The exposition text, as TF Serving's exporter writes it.

        Returns:
            str.
        """
        lines = []
        for metric in self.registry.collect():
            if metric.type == "counter":
                lines.append(f"# TYPE {REQUEST_COUNT} counter")
                for sample in metric.samples:
                    if sample.name.endswith("_total"):
                        lines.append(f"{REQUEST_COUNT}{{{_labels(sample.labels)}}} {int(sample.value)}")
            elif metric.type == "histogram":
                lines.append(f"# TYPE {REQUEST_LATENCY} histogram")
                for sample in metric.samples:
                    suffix = sample.name[len(metric.name) :]
                    if suffix == "_bucket":
                        labels = dict(sample.labels)
                        bound = float(labels.pop("le"))
                        le = "+Inf" if bound == float("inf") else _number(bound)
                        text = _labels({**labels, "le": le})
                        lines.append(f"{REQUEST_LATENCY}_bucket{{{text}}} {int(sample.value)}")
                    elif suffix == "_sum":
                        lines.append(f"{REQUEST_LATENCY}_sum{{{_labels(sample.labels)}}} {_number(sample.value)}")
                    elif suffix == "_count":
                        lines.append(f"{REQUEST_LATENCY}_count{{{_labels(sample.labels)}}} {int(sample.value)}")
        return "\n".join(lines) + "\n"


def _number(value):
    """A double as absl::StrCat prints it (six significant digits, %g)."""
    return "%g" % value


def _labels(labels):
    """Label pairs as prometheus_exporter.cc writes them (backslash and quote escaped)."""
    return ",".join(
        '{}="{}"'.format(name, str(value).replace("\\", "\\\\").replace('"', '\\"')) for name, value in labels.items()
    )
