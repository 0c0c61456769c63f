"""callwatch's Grafana dashboard, built with Grafana's own grafana-foundation-sdk.

    python docs/grafana/dashboard.py           # rewrites docs/grafana/callwatch.json
    python docs/grafana/dashboard.py --check   # exit 1 when callwatch.json is not what this builds

Needs ``pip install 'callwatch[test]'`` (it pins the SDK). Import ``callwatch.json`` in
Grafana (Dashboards > New > Import) and pick your Prometheus data source.

Every web process's ``/metrics`` reports the whole deployment (the counters live in Redis),
so each query first takes ``max`` over the scraped processes, like the shipped alert rules,
and never adds them up. Histograms drop only the per-process labels (``instance``,
``pod``) before their quantile. A test runs every query below against a real Prometheus
scraping a running callwatch (tests/integration/test_grafana_dashboard.py).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from grafana_foundation_sdk.builders import stat, timeseries
from grafana_foundation_sdk.builders.common import StackingConfig, VizLegendOptions
from grafana_foundation_sdk.builders.dashboard import (
    Dashboard,
    DatasourceVariable,
    Row,
    ThresholdsConfig,
)
from grafana_foundation_sdk.builders.prometheus import Dataquery
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.common import (
    BigValueGraphMode,
    GraphDrawStyle,
    LegendDisplayMode,
    LegendPlacement,
    StackingMode,
)
from grafana_foundation_sdk.models.dashboard import (
    DashboardCursorSync,
    DataSourceRef,
    Threshold,
    ThresholdsMode,
)

OUT = Path(__file__).with_name("callwatch.json")
UID = "callwatch"
DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
#: Grafana's rate window: at least four scrape intervals, whatever the zoom.
RATE = "$__rate_interval"
#: Labels that differ between scraped processes reporting the same deployment-wide values.
PER_PROCESS = "instance, pod"


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str = ""


@dataclass(frozen=True)
class Panel:
    title: str
    description: str
    queries: tuple[Query, ...]
    unit: str = "short"
    kind: str = "timeseries"  # or "stat": the current value, big
    stacked: bool = False
    width: int = 8
    #: stat panels: red below this value (e.g. no worker) or from it (e.g. overdue).
    red_below: float | None = None
    red_from: float | None = None


def rate(metric: str, by: str, selector: str = "") -> str:
    """Per-second rate of a deployment-wide counter, one series per ``by`` label set."""
    return f"max by ({by}) (rate({metric}{selector}[{RATE}]))" if by else \
        f"max(rate({metric}{selector}[{RATE}]))"


def quantile(q: float, metric: str, by: str = "") -> str:
    """The ``q`` quantile of a histogram over the deployment, per ``by`` (or every other
    label when ``by`` is ``*``)."""
    buckets = f"max without ({PER_PROCESS}) (rate({metric}_bucket[{RATE}]))"
    if by == "*":
        return f"histogram_quantile({q}, {buckets})"
    grouping = f"le, {by}" if by else "le"
    return f"histogram_quantile({q}, sum by ({grouping}) ({buckets}))"


ROWS: tuple[tuple[str, tuple[Panel, ...]], ...] = (
    ("Calls and alerts", (
        Panel("Status callbacks by outcome",
              "Twilio's status callbacks per second: accepted (a final status, analysis "
              "scheduled), ignored (not final), duplicate, and refused by reason.",
              (Query(rate("callwatch_callbacks_total", "outcome, reason"),
                     "{{outcome}} {{reason}}"),),
              unit="reqps"),
        Panel("Calls analysed",
              "Calls whose Voice Insights events were read, and analysis jobs by outcome.",
              (Query(rate("callwatch_calls_analysed_total", ""), "calls analysed"),
               Query(rate("callwatch_analyses_total", "outcome"), "analysis {{outcome}}")),
              unit="ops"),
        Panel("Alerts by severity and category",
              "Alerts produced per second, by severity and by the SDK issue's category.",
              (Query(rate("callwatch_alerts_total", "severity, category"),
                     "{{severity}} {{category}}"),),
              unit="ops", stacked=True),
    )),
    ("Delivery", (
        Panel("Deliveries by sink and outcome",
              "Delivery attempts per second to each sink: delivered, retried, rejected "
              "(the receiver refused it for good), failed (retries used up).",
              (Query(rate("callwatch_deliveries_total", "sink, outcome"),
                     "{{sink}} {{outcome}}"),),
              unit="ops"),
        Panel("Call end to alert delivered",
              "From the call's final status callback to the alert's first delivery: "
              "p50, p90 and p99 over every sink (the analysis delay included).",
              (Query(quantile(0.5, "callwatch_alert_latency_seconds"), "p50"),
               Query(quantile(0.9, "callwatch_alert_latency_seconds"), "p90"),
               Query(quantile(0.99, "callwatch_alert_latency_seconds"), "p99")),
              unit="s"),
        Panel("Call end to delivered, p99 by sink kind",
              "The same latency's p99 for each kind of sink.",
              (Query(quantile(0.99, "callwatch_alert_latency_seconds", "*")),),
              unit="s"),
        Panel("Delivery attempt duration, p95 by sink",
              "How long each sink takes to answer one delivery attempt.",
              (Query(quantile(0.95, "callwatch_delivery_duration_seconds", "sink"),
                     "{{sink}}"),),
              unit="s"),
        Panel("Slow sinks",
              "1 while a sink is held to a small share of the workers because its sends "
              "time out or take over 5 s; its deliveries wait in a line of their own.",
              (Query("max by (sink) (callwatch_sink_slow)", "{{sink}}"),),
              unit="bool"),
        Panel("Alerts not sent: unrouted, silenced, folded",
              "Alerts no route took; alerts a silence stopped; per-call alerts folded into "
              "an open incident instead of sent one by one.",
              (Query(rate("callwatch_alerts_unrouted_total", ""), "unrouted"),
               Query(rate("callwatch_alerts_silenced_total", ""), "silenced"),
               Query(rate("callwatch_alerts_folded_total", "route"), "folded {{route}}")),
              unit="ops"),
    )),
    ("Queues, workers and overdue analyses", (
        Panel("Jobs in the queues",
              "Jobs by queue and state (queued, scheduled, started, failed), whole "
              "deployment. Scheduled analyses wait for their delay; queued ones for a worker.",
              (Query("max by (queue, state) (callwatch_queue_jobs)", "{{queue}} {{state}}"),),
              width=16),
        Panel("Workers",
              "Worker processes with a live heartbeat. 0 means nothing analyses calls or "
              "delivers alerts (rule CallwatchNoWorkers).",
              (Query("max(callwatch_workers)", "workers"),),
              kind="stat", width=4, red_below=1),
        Panel("Oldest overdue analysis",
              "Age of the oldest accepted call whose analysis is due and not started; 0 "
              "when none (rule CallwatchAnalysisOverdue).",
              (Query("max(callwatch_analysis_overdue_seconds)", "overdue"),),
              unit="s", kind="stat", width=4, red_from=60),
    )),
    ("Incidents and silences", (
        Panel("Open incidents",
              "Storm and ratio incidents open now, over every route.",
              (Query("max(callwatch_incidents_open)", "open incidents"),),
              kind="stat", width=4),
        Panel("Active silences",
              "Silences in force now (callwatch silence list).",
              (Query("max(callwatch_silences_active)", "active silences"),),
              kind="stat", width=4),
        Panel("Incident events",
              "Incidents opened, updated and resolved per second, by route and trigger.",
              (Query(rate("callwatch_incidents_total", "route, trigger, event"),
                     "{{route}} {{trigger}} {{event}}"),),
              unit="ops", width=16),
    )),
    ("Voice Insights API", (
        Panel("Insights requests by status",
              "Requests to the Voice Insights Events API per second, by HTTP status.",
              (Query(rate("callwatch_insights_requests_total", "status"), "{{status}}"),),
              unit="reqps"),
        Panel("Insights errors",
              "Requests Insights answered with anything but 2xx (429: throttled; 401/403: "
              "credentials or Advanced Features; 5xx: retried).",
              (Query(rate("callwatch_insights_requests_total", "status", '{status!~"2.."}'),
                     "{{status}}"),),
              unit="reqps"),
        Panel("Insights request duration, p95",
              "How long the Insights API takes to answer one request.",
              (Query(quantile(0.95, "callwatch_insights_request_duration_seconds"), "p95"),),
              unit="s"),
    )),
    ("Configuration and metrics", (
        Panel("Configuration fingerprints",
              "Distinct routing configurations among running processes. Above 1 for long "
              "means processes disagree on the sinks (rule CallwatchConfigDrift).",
              (Query("count(max by (fingerprint) (callwatch_config_info))", "fingerprints"),),
              kind="stat", width=4, red_from=2),
        Panel("Processes by configuration fingerprint",
              "Each running configuration's fingerprint, to see which processes lag a rollout.",
              (Query("max by (fingerprint) (callwatch_config_info)", "{{fingerprint}}"),),
              width=12),
        Panel("Metrics store (Redis) up",
              "1 when Redis answered the scrape; 0 when it did not (rule CallwatchRedisDown).",
              (Query("min(callwatch_metrics_redis_up)", "redis up"),),
              kind="stat", width=8, red_below=1),
    )),
)


def _thresholds(panel: Panel) -> ThresholdsConfig:
    if panel.red_below is not None:
        steps = [Threshold(value=None, color="red"), Threshold(value=panel.red_below, color="green")]
    elif panel.red_from is not None:
        steps = [Threshold(value=None, color="green"), Threshold(value=panel.red_from, color="red")]
    else:
        steps = [Threshold(value=None, color="green")]
    return ThresholdsConfig().mode(ThresholdsMode.ABSOLUTE).steps(steps)


def build_panel(panel: Panel) -> stat.Panel | timeseries.Panel:
    built: stat.Panel | timeseries.Panel
    if panel.kind == "stat":
        built = stat.Panel().graph_mode(BigValueGraphMode.AREA).height(6)
    else:
        built = (timeseries.Panel().height(8).draw_style(GraphDrawStyle.LINE).fill_opacity(10)
                 .legend(VizLegendOptions().display_mode(LegendDisplayMode.LIST)
                         .placement(LegendPlacement.BOTTOM).show_legend(True)))
        if panel.stacked:
            built = built.stacking(StackingConfig().mode(StackingMode.NORMAL))
    built = (built.title(panel.title).description(panel.description).datasource(DATASOURCE)
             .unit(panel.unit).span(panel.width).thresholds(_thresholds(panel)))
    if panel.kind == "timeseries":
        built = built.min(0)
    for ref, query in zip("ABCDEFGH", panel.queries, strict=False):
        target = Dataquery().expr(query.expr).ref_id(ref).datasource(DATASOURCE).range()
        if query.legend:
            target = target.legend_format(query.legend)
        built = built.with_target(target)
    return built


def build_dashboard() -> Dashboard:
    dashboard = (
        Dashboard("callwatch")
        .uid(UID)
        .description("Twilio Voice calls, the alerts they make and their delivery: "
                     "generated by docs/grafana/dashboard.py")
        .tags(["callwatch", "twilio"])
        .refresh("30s")
        .time("now-6h", "now")
        .timezone("browser")
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .with_variable(DatasourceVariable("datasource").label("Prometheus").type("prometheus"))
    )
    for title, panels in ROWS:
        dashboard = dashboard.with_row(Row(title))
        for panel in panels:
            dashboard = dashboard.with_panel(build_panel(panel))
    return dashboard


def render() -> str:
    """The dashboard's JSON, as checked in."""
    return JSONEncoder(sort_keys=True, indent=2).encode(build_dashboard().build()) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="compare with the checked-in JSON instead of writing it")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if OUT.read_text(encoding="utf-8") != text:
            print(f"{OUT} is out of date: run python docs/grafana/dashboard.py", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
