"""Helpers of the metrics tests: the metric names the code defines, promtool, scraping."""

import re
import subprocess
from pathlib import Path

import httpx
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

import consumers.metrics
import ledger.feedback.metrics
import ledger.metrics
import ledger.webhooks.metrics
import projections.metrics
import relay.metrics

ROOT = Path(__file__).resolve().parents[1]
METRIC_NAME = re.compile(r"\bconsent_ledger_[a-z0-9_]+")
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "gauge": ("",),
}
DEFINED_BY = (
    ledger.metrics,
    ledger.feedback.metrics,
    ledger.webhooks.metrics,
    relay.metrics,
    consumers.metrics,
    projections.metrics,
)


def defined_series() -> set[str]:
    """Every series name the code's metrics can expose, suffixes included."""
    names = {
        family.name + suffix
        for family in REGISTRY.collect()
        if family.name.startswith("consent_ledger_")
        for suffix in SUFFIXES[family.type]
    }
    business = projections.metrics.BusinessMetrics(lambda: ((), (), ())).describe()
    return names | {family.name for family in business}


def promtool() -> str:
    """promtool's path; scripts/promtool.sh installs Debian's prometheus package if needed."""
    result = subprocess.run(
        [str(ROOT / "scripts" / "promtool.sh")],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert result.returncode == 0, f"scripts/promtool.sh failed: {result.stderr}"
    return result.stdout.strip()


def promtool_check_metrics(exposition: str) -> None:
    result = subprocess.run(
        [promtool(), "check", "metrics"],
        input=exposition,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, f"promtool check metrics: {result.stdout}{result.stderr}"


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """One scrape of ``url``: value by (series name, sorted labels)."""
    text = httpx.get(url, timeout=5).text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    """The sample's value, 0 when the series is absent (a counter not yet touched)."""
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def total(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str) -> float:
    """The sum over every label set of one series name."""
    return sum(v for (n, _), v in samples.items() if n == name)
