"""Prometheus metrics of the server (prometheus_client): requests, latency, batch sizes."""


class Metrics:
    """Prometheus metrics (prometheus_client): requests, latency, batch sizes."""

    def __init__(self):
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry = CollectorRegistry()
        self.requests = Counter("knlp_requests", "requests answered", ["model", "code"],
                                registry=self.registry)
        self.latency = Histogram("knlp_request_latency_seconds", "request latency", ["model"],
                                 registry=self.registry,
                                 buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10))
        self.batch_size = Histogram("knlp_batch_size", "rows per model call",
                                    registry=self.registry, buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256))

    def observe_batch(self, rows):
        self.batch_size.observe(rows)

    def render(self):
        from prometheus_client import generate_latest

        return generate_latest(self.registry)
