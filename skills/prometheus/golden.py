"""Golden-signal and dependency queries, as PromQL templates with `$service`, `$target` and
`$rate` placeholders. The defaults follow the common conventions (`http_requests_total`,
`http_request_duration_seconds_bucket`, `process_*`, `http_client_requests_total`, `build_info`,
kube-state-metrics); any of them can be replaced to fit another naming scheme."""

from __future__ import annotations

from string import Template

from pydantic import BaseModel, Field

# How each signal goes wrong: "up" means a rise is bad, "down" a fall, "both" either.
DIRECTION = {"errors": "up", "latency": "up", "traffic": "both", "cpu": "up", "memory": "up",
             "client_errors": "up", "client_latency": "up", "client_traffic": "both"}


class GoldenSignals(BaseModel):
    """The queries an investigation runs. Override per deployment (settings or code)."""

    rate: str = "5m"
    signals: dict[str, str] = Field(default_factory=lambda: {
        "traffic": 'sum(rate(http_requests_total{service="$service"}[$rate]))',
        "errors": ('(sum(rate(http_requests_total{service="$service",code=~"5.."}[$rate])) '
                   'or vector(0)) / sum(rate(http_requests_total{service="$service"}[$rate]))'),
        "latency": ('histogram_quantile(0.99, sum by (le) (rate('
                    'http_request_duration_seconds_bucket{service="$service"}[$rate])))'),
        "cpu": 'sum(rate(process_cpu_seconds_total{service="$service"}[$rate]))',
        "memory": 'sum(process_resident_memory_bytes{service="$service"})',
    })
    # Calls between services seen over the investigated range: one sample per (service, target).
    edges: str = ('count by (service, target) '
                  '(last_over_time(http_client_requests_total[$range]))')
    # What a caller sees of each of its targets, one series per target.
    client_signals: dict[str, str] = Field(default_factory=lambda: {
        "client_errors": (
            '(sum by (target) (rate(http_client_requests_total{service="$service",'
            'code=~"5.."}[$rate])) or (0 * sum by (target) (rate(http_client_requests_total{'
            'service="$service"}[$rate])))) / sum by (target) (rate('
            'http_client_requests_total{service="$service"}[$rate]))'),
        # How often it calls each target: a rise is load it pushes (retries, a surge).
        "client_traffic": ('sum by (target) (rate(http_client_requests_total{'
                           'service="$service"}[$rate]))'),
    })
    # Versions running per service (a deploy shows as a new version series) and rollouts.
    versions: str = 'max by (service, version) (build_info{service=~"$services"})'
    rollouts: str = ('max by (deployment) (kube_deployment_status_observed_generation'
                     '{deployment=~"$services"})')

    def render(self, template: str, **values: str) -> str:
        return Template(template).safe_substitute(rate=self.rate, **values)
