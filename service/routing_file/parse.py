"""The routing file's text, parsed and checked once at start-up.

The YAML names sinks, ordered routes with matchers, a ``default`` and the storm
and ratio settings (the README's "Routing, PagerDuty, Teams, email and silences").
The text is read as hostile input (``service.routing_file.yaml_reading``: size and depth
caps, no anchors or aliases); ``${NAME}`` in any string value is replaced by that
environment variable after the YAML is read, so a secret holding YAML's special
characters cannot change the file's structure. Every
mistake raises ``ConfigError`` whose message starts with the key path
(``routes[1].match.colour: unknown matcher key``), so the process stops with one
line that says where to look. A sink's options are declared and checked by its type
(``service.delivery.sinks.registry``), the only place that lists sink types. The
result is frozen values only; the router (``service.delivery.routing``) and the
sinks are built from it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from service.delivery.incidents.policy import RatioPolicy, StormPolicy
from service.delivery.sinks.base import SinkOptionError, SinkSpec
from service.delivery.sinks.registry import SINK_TYPES
from service.errors import ConfigError
from service.routing_file import storms
from service.routing_file.matchers import Matcher, matcher
from service.routing_file.paths import KeyPathError, mapping
from service.routing_file.yaml_reading import HardenedLoader, Refused, load_yaml, substitute

SINK_NAME_RE = re.compile(r"^[a-z0-9-]{1,40}\Z")
ROUTE_NAME_RE = SINK_NAME_RE
_TOP_KEYS = ("sinks", "routes", "default", "storm", "ratio")
_ROUTE_KEYS = ("name", "match", "sinks", "continue", "storm", "ratio")


@dataclass(frozen=True)
class Route:
    """One entry of ``routes``: its matcher, its sinks (``()`` drops), and what follows."""

    name: str
    match: Matcher
    sinks: tuple[str, ...]
    continue_: bool = False
    storm: StormPolicy | None = field(default_factory=StormPolicy)
    ratio: RatioPolicy | None = None


@dataclass(frozen=True)
class RoutingConfig:
    """The parsed file: sinks (with secrets: never logged), routes, default, policies."""

    source: str
    sinks: tuple[SinkSpec, ...] = ()
    routes: tuple[Route, ...] = ()
    #: Sinks for an alert no route took; ``None``: such an alert is unrouted.
    default: tuple[str, ...] | None = None
    storm: StormPolicy | None = field(default_factory=StormPolicy)
    ratio: RatioPolicy | None = None


def parse_config(text: str, environ: Mapping[str, str], *, variable: str = "CALLWATCH_CONFIG",
                 plain_sinks: Mapping[str, str] | None = None) -> RoutingConfig:
    """Parse and check one routing file; ``ConfigError(variable, "<key path>: ...")``.

    ``plain_sinks`` are the names the plain variables already use (``slack``,
    ``webhook-<host>``), each with its variable: routes may name them, the file may not
    reuse them.
    """
    raw = load_yaml(text, variable, loader=_UniqueKeyLoader)
    try:
        return _Parser(environ, plain_sinks or {}).config(raw, variable)
    except KeyPathError as error:
        raise ConfigError(variable, f"{error.path}: {error.message}") from None


def masked(spec: SinkSpec) -> dict[str, Any]:
    """A sink's options for a person: secrets shown as their first characters only."""
    secrets = SINK_TYPES[spec.type].secrets
    return {key: _mask(str(value), url=key == "url") if key in secrets else value
            for key, value in spec.options.items() if key != "legacy_name"}


def _mask(value: str, *, url: bool) -> str:
    if url:
        match = re.match(r"^([a-z]+://[^/?#]+)", value)
        return (match.group(1) + "/***") if match else "***"
    return (value[:4] + "***") if len(value) > 8 else "***"


class _DuplicateKey(Refused):
    def __init__(self, path: str, line: int) -> None:
        super().__init__(f"{path}: is given twice (line {line})")


class _UniqueKeyLoader(HardenedLoader):
    """The hardened loader, except that a key given twice in a mapping is an error (two
    sinks of the same name would otherwise silently become one)."""

    def construct_document(self, node: yaml.Node) -> Any:
        self._callwatch_root = node if isinstance(node, yaml.MappingNode) else None
        return super().construct_document(node)  # type: ignore[no-untyped-call]

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            if isinstance(key, str | int) and key in seen:
                path = "sinks." + str(key) if _under_sinks(node, self) else str(key)
                raise _DuplicateKey(path, key_node.start_mark.line + 1)
            if isinstance(key, str | int):
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _under_sinks(node: yaml.MappingNode, loader: yaml.SafeLoader) -> bool:
    """True when ``node`` is the value of the top-level ``sinks`` key."""
    root = getattr(loader, "_callwatch_root", None)
    if root is None:
        return False
    return any(isinstance(k, yaml.ScalarNode) and k.value == "sinks" and v is node
               for k, v in root.value)


class _Parser:
    def __init__(self, environ: Mapping[str, str], plain_sinks: Mapping[str, str]) -> None:
        self._environ = environ
        self._plain = dict(plain_sinks)

    def config(self, raw: Any, variable: str) -> RoutingConfig:
        if raw is None:
            raw = {}
        raw = substitute(raw, self._environ, variable)
        top = mapping(raw, "(top level)", _TOP_KEYS, prefix="")
        sinks = self._sinks(top.get("sinks"))
        names = set(self._plain) | {spec.name for spec in sinks}
        if not names:
            names = {"log"}
        storm = storms.storm(top["storm"], "storm", StormPolicy()) if "storm" in top else StormPolicy()
        ratio = storms.ratio(top["ratio"], "ratio", None) if "ratio" in top else None
        routes_raw = top.get("routes")
        if routes_raw is None:
            routes_raw = []
        if not isinstance(routes_raw, list):
            raise KeyPathError("routes", "must be a list of routes")
        routes = tuple(self._route(item, f"routes[{index}]", names, storm, ratio)
                       for index, item in enumerate(routes_raw))
        seen: set[str] = set()
        for index, route in enumerate(routes):
            if route.name in seen or route.name == "default":
                raise KeyPathError(f"routes[{index}].name", f"{route.name!r} is already a route's name")
            seen.add(route.name)
        default = None
        if "default" in top and top["default"] is not None:
            default = _sink_names(top["default"], "default", names)
        return RoutingConfig(source=variable, sinks=sinks, routes=routes, default=default,
                             storm=storm, ratio=ratio)

    def _sinks(self, raw: Any) -> tuple[SinkSpec, ...]:
        if raw is None:
            return ()
        if not isinstance(raw, dict):
            raise KeyPathError("sinks", "must map sink names to their settings")
        specs = []
        for name, options in raw.items():
            path = f"sinks.{name}"
            if not isinstance(name, str) or not SINK_NAME_RE.match(name):
                raise KeyPathError(path, "a sink's name is 1 to 40 of a-z, 0-9 and -")
            if name in self._plain:
                owner = self._plain[name]
                raise KeyPathError(path, f"the name {name!r} is already taken by {owner}; "
                                      "rename the sink or unset the variable")
            specs.append(self._sink(name, options, path))
        return tuple(specs)

    def _sink(self, name: str, raw: Any, path: str) -> SinkSpec:
        if not isinstance(raw, dict):
            raise KeyPathError(path, "must be a mapping with a type, e.g. {type: slack, url: ...}")
        sink_type = raw.get("type")
        if sink_type not in SINK_TYPES:
            raise KeyPathError(f"{path}.type", f"must be one of {', '.join(SINK_TYPES)}, not {sink_type!r}")
        declared = SINK_TYPES[sink_type]
        required, optional = declared.required, declared.optional
        for key in raw:
            if key != "type" and key not in required + optional:
                raise KeyPathError(f"{path}.{key}", f"unknown field for a {sink_type} sink; "
                                                    f"it takes {', '.join(required + optional) or 'none'}")
        for key in required:
            if raw.get(key) in (None, "", []):
                raise KeyPathError(f"{path}.{key}", f"is required for a {sink_type} sink")
        options = {key: raw[key] for key in required + optional if key in raw}
        try:
            options = declared.check(options, self._environ)
        except SinkOptionError as error:
            raise KeyPathError(f"{path}.{error.key}" if error.key else path, error.message) from None
        return SinkSpec(name, sink_type, options)

    def _route(self, raw: Any, path: str, names: set[str], storm: StormPolicy | None,
               ratio: RatioPolicy | None) -> Route:
        route = mapping(raw, path, _ROUTE_KEYS)
        if "sinks" not in route:
            raise KeyPathError(f"{path}.sinks", "is required (an empty list drops the alerts it matches)")
        name = route.get("name", path)
        if "name" in route and (not isinstance(name, str) or not ROUTE_NAME_RE.match(name)):
            raise KeyPathError(f"{path}.name", "a route's name is 1 to 40 of a-z, 0-9 and -")
        follow = route.get("continue", False)
        if not isinstance(follow, bool):
            raise KeyPathError(f"{path}.continue", "must be true or false")
        return Route(
            name=name,
            match=matcher(route.get("match") or {}, f"{path}.match"),
            sinks=_sink_names(route["sinks"], f"{path}.sinks", names),
            continue_=follow,
            storm=storms.storm(route["storm"], f"{path}.storm", storm) if "storm" in route else storm,
            ratio=storms.ratio(route["ratio"], f"{path}.ratio", ratio) if "ratio" in route else ratio,
        )


def _sink_names(raw: Any, path: str, names: set[str]) -> tuple[str, ...]:
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list):
        raise KeyPathError(path, "must be a list of sink names")
    for index, name in enumerate(raw):
        if name not in names:
            raise KeyPathError(f"{path}[{index}]", f"no sink is named {name!r}; "
                                                f"known: {', '.join(sorted(names))}")
    return tuple(dict.fromkeys(raw))
