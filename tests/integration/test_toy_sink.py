"""A new sink type is its own module plus one registry line: the routing file, the sinks
and the delivery jobs take it with no other change."""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis as redis_lib

from devtools.pipeline import Pipeline, pipeline_settings
from devtools.simulator.server import SimulatorServer
from service.delivery.sinks import registry
from service.errors import ConfigError
from service.routing_file.load import load
from service.routing_file.parse import parse_config

#: The whole of a toy sink type, as a person adding one would write it: it appends each
#: alert (and incident event) as a JSON line to the file its ``path`` option names.
TOY_MODULE = '''
from __future__ import annotations

import json
from typing import Any

from service.delivery.sinks.base import SinkOptionError, SinkSpec, SinkType, check_text


class ToySink:
    kind = "chat"
    pace_s = None

    def __init__(self, name: str, path: str, label: str) -> None:
        self.name, self._path, self._label = name, path, label

    def send(self, alert: Any) -> None:
        self._write({"label": self._label, "alert_id": alert.alert_id})

    def send_incident(self, event: Any) -> None:
        self._write({"label": self._label, "incident_id": event.incident_id})

    def _write(self, line: dict[str, Any]) -> None:
        with open(self._path, "a", encoding="utf-8") as file:
            file.write(json.dumps(line) + "\\n")


def _check(options: dict[str, Any], environ: Any) -> dict[str, Any]:
    check_text(options, "path")
    if len(str(options.get("label", ""))) > 20:
        raise SinkOptionError("label", "at most 20 characters")
    return options


SINK_TYPE = SinkType("toy", lambda spec, env: ToySink(spec.name, spec.options["path"],
                                                      spec.options.get("label", "toy")),
                     required=("path",), optional=("label",), check=_check)
'''


@pytest.fixture
def toy(tmp_path: Path) -> Iterator[Path]:
    """The toy sink type's module written into a package of its own, and registered."""
    package = tmp_path / "toy_plugin"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "toy.py").write_text(TOY_MODULE)
    sys.path.insert(0, str(tmp_path))
    try:
        module = importlib.import_module("toy_plugin.toy")
        registry.register(module.SINK_TYPE)  # the one registry line
        yield tmp_path / "toy.jsonl"
    finally:
        registry.SINK_TYPES.pop("toy", None)
        sys.modules.pop("toy_plugin.toy", None)
        sys.modules.pop("toy_plugin", None)
        sys.path.remove(str(tmp_path))


def test_the_routing_file_checks_a_new_types_own_options(toy: Path) -> None:
    """The parser takes a registered type's options and runs its checks, naming the key path."""
    config = parse_config(f"sinks:\n  toybox: {{type: toy, path: '{toy}', label: ops}}\n", {})
    assert config.sinks[0].type == "toy" and config.sinks[0].options == {"path": str(toy), "label": "ops"}
    with pytest.raises(ConfigError, match=r"sinks.toybox.colour: unknown field for a toy sink; "
                                          r"it takes path, label"):
        parse_config("sinks:\n  toybox: {type: toy, path: x, colour: red}\n", {})
    with pytest.raises(ConfigError, match=r"sinks.toybox.label: at most 20 characters"):
        parse_config(f"sinks:\n  toybox: {{type: toy, path: x, label: '{'x' * 21}'}}\n", {})
    with pytest.raises(ConfigError, match=r"sinks.toybox.path: is required for a toy sink"):
        parse_config("sinks:\n  toybox: {type: toy}\n", {})


def test_alerts_are_delivered_through_a_new_type(toy: Path, redis: redis_lib.Redis, redis_server,
                                                 simulator: SimulatorServer) -> None:
    """A routed alert reaches the toy sink through the same delivery jobs as any other."""
    env = {"CALLWATCH_CONFIG": f"sinks:\n  toybox: {{type: toy, path: '{toy}', label: ops}}\n"
                               "routes:\n  - {match: {severity: error}, sinks: [toybox]}\n"}
    settings = pipeline_settings(redis_server.url, simulator, **env)
    pipe = Pipeline(settings, redis, simulator, routing=load(settings, env))
    pipe.play("sdk-error", seed=1)
    pipe.drain(until=lambda: toy.exists())
    lines = [json.loads(line) for line in toy.read_text().splitlines()]
    assert [line["label"] for line in lines] == ["ops"] and lines[0]["alert_id"].startswith("alr_")
