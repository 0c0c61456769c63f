"""A huge routing file on disk is refused after reading just past the cap."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest

from service.errors import ConfigError
from service.routing_file.yaml_reading import MAX_BYTES, read_file


def test_a_50_mb_file_is_refused_reading_only_past_the_cap(tmp_path: Path) -> None:
    """read_file of a 50 MB file raises one line naming the variable, in < 50 MB of memory."""
    path = tmp_path / "routing.yaml"
    with path.open("wb") as file:
        chunk = b"# " + b"x" * (1024 * 1024 - 3) + b"\n"
        for _ in range(50):
            file.write(chunk)
    tracemalloc.start()
    try:
        with pytest.raises(ConfigError) as refused:
            read_file(str(path))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 50 * 1024 * 1024 and peak < 3 * MAX_BYTES
    assert str(refused.value) == (f"CALLWATCH_CONFIG_FILE: {path} is over 1 MiB; a routing file "
                                  "is a few kilobytes")


def test_missing_and_non_utf8_files_are_one_line(tmp_path: Path) -> None:
    """A missing file and a file that is not UTF-8 are refused naming the variable."""
    with pytest.raises(ConfigError, match=r"^CALLWATCH_CONFIG_FILE: cannot read .*nope\.yaml: "
                                          r"FileNotFoundError"):
        read_file(str(tmp_path / "nope.yaml"))
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"sinks: {}\n# caf\xe9\n")
    with pytest.raises(ConfigError, match=r"not UTF-8 \(byte 15\)$"):
        read_file(str(latin))
    small = tmp_path / "ok.yaml"
    small.write_text("sinks: {}\n")
    assert read_file(str(small)) == "sinks: {}\n"
