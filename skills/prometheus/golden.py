"""Golden-signal and dependency queries, as PromQL templates with `$services`, `$range` and
`$rate` placeholders. A signal's template reads many services in one request: `$services` is a
regex of their names and the result keeps a `service` label per series (`by (service)`), so an
investigation asks once per signal, not once per service and signal. The defaults follow the
common conventions (`http_requests_total`, `http_request_duration_seconds_bucket`, `process_*`,
`http_client_requests_total`, `build_info`, kube-state-metrics); any of them can be replaced to
fit another naming scheme — a replacement that names one `$service` still works, one request
per service."""

from __future__ import annotations

import re
from collections.abc import Sequence
from string import Template

from pydantic import BaseModel, Field

# How each signal goes wrong: "up" means a rise is bad, "down" a fall, "both" either.
DIRECTION = {"errors": "up", "latency": "up", "traffic": "both", "cpu": "up", "memory": "up",
             "client_errors": "up", "client_latency": "up", "client_traffic": "both"}


class GoldenSignals(BaseModel):
    """The queries an investigation runs. Override per deployment (settings or code)."""

    rate: str = "5m"
    signals: dict[str, str] = Field(default_factory=lambda: {
        "traffic": 'sum by (service) (rate(http_requests_total{service=~"$services"}[$rate]))',
        # A service with no 5xx series at all has an error rate of 0, not no error rate.
        "errors": ('(sum by (service) (rate(http_requests_total{service=~"$services",'
                   'code=~"5.."}[$rate])) or (0 * sum by (service) (rate(http_requests_total{'
                   'service=~"$services"}[$rate])))) / sum by (service) (rate('
                   'http_requests_total{service=~"$services"}[$rate]))'),
        "latency": ('histogram_quantile(0.99, sum by (service, le) (rate('
                    'http_request_duration_seconds_bucket{service=~"$services"}[$rate])))'),
        "cpu": 'sum by (service) (rate(process_cpu_seconds_total{service=~"$services"}[$rate]))',
        "memory": 'sum by (service) (process_resident_memory_bytes{service=~"$services"})',
    })
    # Calls between services seen over the investigated range: one sample per (service, target).
    edges: str = ('count by (service, target) '
                  '(last_over_time(http_client_requests_total[$range]))')
    # What each caller sees of each of its targets, one series per (service, target).
    client_signals: dict[str, str] = Field(default_factory=lambda: {
        "client_errors": (
            '(sum by (service, target) (rate(http_client_requests_total{service=~"$services",'
            'code=~"5.."}[$rate])) or (0 * sum by (service, target) (rate('
            'http_client_requests_total{service=~"$services"}[$rate])))) / sum by (service, '
            'target) (rate(http_client_requests_total{service=~"$services"}[$rate]))'),
        # How often it calls each target: a rise is load it pushes (retries, a surge).
        "client_traffic": ('sum by (service, target) (rate(http_client_requests_total{'
                           'service=~"$services"}[$rate]))'),
    })
    # Versions running per service (a deploy shows as a new version series) and rollouts.
    versions: str = 'max by (service, version) (build_info{service=~"$services"})'
    rollouts: str = ('max by (deployment) (kube_deployment_status_observed_generation'
                     '{deployment=~"$services"})')

    def render(self, template: str, **values: str) -> str:
        return Template(template).safe_substitute(rate=self.rate, **values)

    def for_services(self, template: str, services: Sequence[str]) -> str:
        """`template` for these services: one request for all of them when it names
        `$services`. For one service the regex match becomes an equality
        (`service="checkout"`), as people write it and read it in evidence; a template that
        names one `$service` gets the first."""
        if len(services) == 1:
            literal = services[0].replace("\\", "\\\\").replace('"', '\\"')
            one = template.replace('=~"$services"', '="$services"')
            return self.render(one, services=literal, service=services[0])
        return self.render(template, services=services_regex(services),
                           service=services[0] if services else "")

    @staticmethod
    def grouped(template: str) -> bool:
        """Whether one request answers for many services (the template names `$services`)."""
        return "$services" in template or "${services}" in template


def services_regex(names: Sequence[str]) -> str:
    """A regex matching exactly these names, inside a PromQL double-quoted string (whose own
    escapes double every backslash)."""
    return "|".join(re.sub(r"([.*+?^${}()|\[\]\\])", r"\\\1", n)
                    .replace("\\", "\\\\").replace('"', '\\"') for n in names)
