"""The routing file's YAML read as hostile input: bombs, huge and deep files refused with
one line and little memory; ``${NAME}`` substituted in string values only, ``$NAME`` and
an unclosed ``${NAME`` refused naming the key."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from typing import Any

import pytest

from service.errors import ConfigError
from service.routing_file.yaml_reading import MAX_BYTES, MAX_DEPTH, load_yaml, substitute

#: The 386-byte "billion laughs": nine levels of ten aliases each, 10^9 leaves expanded.
ALIAS_BOMB = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""
PEAK_LIMIT = 50 * 1024 * 1024


def refused_within_memory(call: Callable[[], Any]) -> tuple[ConfigError, int]:
    """The ConfigError ``call`` raises and the peak memory it allocated meanwhile."""
    tracemalloc.start()
    try:
        with pytest.raises(ConfigError) as refused:
            call()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return refused.value, peak


def test_the_alias_bomb_is_refused_with_little_memory() -> None:
    """The billion-laughs file is refused at its first anchor, on one line, in < 50 MB."""
    assert len(ALIAS_BOMB.encode()) < 400
    error, peak = refused_within_memory(lambda: load_yaml(ALIAS_BOMB, "CALLWATCH_CONFIG"))
    assert peak < PEAK_LIMIT
    assert str(error) == ("CALLWATCH_CONFIG: line 1: YAML anchors (&a) are not allowed in the "
                          "routing file; write the value out")


def test_an_alias_alone_and_a_merge_key_are_refused() -> None:
    """An alias of an unknown anchor, and ``<<: *x`` merges, are refused too."""
    with pytest.raises(ConfigError, match=r"line 1: YAML aliases \(\*x\) are not allowed"):
        load_yaml("sinks: *x\n")
    with pytest.raises(ConfigError, match=r"line 1: YAML anchors \(&base\)"):
        load_yaml("base: &base {type: slack}\nsinks:\n  a: {<<: *base, url: x}\n")


def test_a_50_mb_text_is_refused_before_parsing() -> None:
    """A 50 MB CALLWATCH_CONFIG is refused by its size, with no copy of it made."""
    huge = "# " + "x" * (50 * 1024 * 1024) + "\n"
    error, peak = refused_within_memory(lambda: load_yaml(huge, "CALLWATCH_CONFIG"))
    assert peak < PEAK_LIMIT
    assert str(error) == "CALLWATCH_CONFIG: is over 1 MiB; a routing file is a few kilobytes"


def test_a_text_just_under_the_cap_is_read() -> None:
    """The cap is the cap: a comment-padded file of exactly MAX_BYTES is read."""
    text = "sinks: {}\n#" + "x" * (MAX_BYTES - 12) + "\n"
    assert len(text.encode()) == MAX_BYTES
    assert load_yaml(text) == {"sinks": {}}


@pytest.mark.parametrize(("deep", "line"), [
    ("[" * 200_000 + "]" * 200_000, 1),
    ("{a: " * 100_000 + "1" + "}" * 100_000, 1),
    ("".join(" " * n + "a:\n" for n in range(MAX_DEPTH + 5)) + " " * (MAX_DEPTH + 5) + "1\n",
     MAX_DEPTH),
], ids=["flow-lists", "flow-maps", "block-maps"])
def test_deep_nesting_is_refused_with_one_line(deep: str, line: int) -> None:
    """Nesting past MAX_DEPTH is one ConfigError line, not a RecursionError, in < 50 MB."""
    error, peak = refused_within_memory(lambda: load_yaml(deep, "CALLWATCH_CONFIG_FILE"))
    assert peak < PEAK_LIMIT
    assert str(error) == f"CALLWATCH_CONFIG_FILE: line {line}: nested more than {MAX_DEPTH} deep"


def test_a_real_routing_file_reads_as_before() -> None:
    """The README's routing file, its deepest path included, reads unchanged."""
    text = """
sinks:
  voice-ops: {type: slack, url: "${SLACK_VOICE_OPS_URL}"}
  ops-mail:  {type: email, to: [voice-ops@example.com]}
routes:
  - match: {severity: error, error_code: [31401, 31402]}
    sinks: [voice-ops]
    storm: {calls: 10, group_by: [issue]}
default: [ops-mail]
"""
    raw = load_yaml(text)
    assert raw["routes"][0]["match"]["error_code"] == [31401, 31402]
    assert raw["sinks"]["voice-ops"]["url"] == "${SLACK_VOICE_OPS_URL}"


def test_invalid_yaml_is_one_line_with_its_place() -> None:
    """A syntax error names its line and column and holds no line break."""
    with pytest.raises(ConfigError) as refused:
        load_yaml("sinks: [a, b\nroutes: 1\n")
    assert str(refused.value).startswith("CALLWATCH_CONFIG: is not valid YAML at line ")
    assert "\n" not in str(refused.value)


def test_braced_names_are_replaced_in_string_values_only() -> None:
    """``${NAME}`` in values is replaced (stripped); keys, numbers and ``$$`` stay as written."""
    raw = {"sinks": {"crm": {"url": "https://x/${HOOK}/y", "secret": "${SECRET}"}},
           "${KEY}": 5, "price": "$$5", "n": 3}
    env = {"HOOK": " abc ", "SECRET": "whsec_${NOT_AGAIN}", "KEY": "no"}
    assert substitute(raw, env) == {
        "sinks": {"crm": {"url": "https://x/abc/y", "secret": "whsec_${NOT_AGAIN}"}},
        "${KEY}": 5, "price": "$5", "n": 3}


@pytest.mark.parametrize(("value", "message"), [
    ("$SECRET", "routes[1].sinks[0]: $SECRET needs braces: write ${SECRET} (or $$ for a literal $)"),
    ("x${SECRET", "routes[1].sinks[0]: ${SECRET is not closed with }"),
    ("${1BAD}", "routes[1].sinks[0]: ${1BAD} is not an environment variable's name"),
    ("${UNSET}", "routes[1].sinks[0]: ${UNSET} is not set in the environment"),
])
def test_mistaken_references_name_the_key(value: str, message: str) -> None:
    """``$NAME``, an unclosed ``${NAME``, a bad name and an unset variable are errors naming
    the key path, never sent literally."""
    raw = {"routes": [{"sinks": []}, {"sinks": [value]}]}
    with pytest.raises(ConfigError) as refused:
        substitute(raw, {"SECRET": "s"}, "CALLWATCH_CONFIG")
    assert str(refused.value) == f"CALLWATCH_CONFIG: {message}"


def test_a_key_with_a_line_break_keeps_the_error_on_one_line() -> None:
    """A quoted key holding a newline is escaped in the key path of the error."""
    raw = load_yaml('sinks:\n  "a\\nb": {url: "$HOOK"}\n')
    with pytest.raises(ConfigError) as refused:
        substitute(raw, {})
    assert str(refused.value) == ("CALLWATCH_CONFIG: sinks.a\\nb.url: $HOOK needs braces: "
                                  "write ${HOOK} (or $$ for a literal $)")
