"""requirements.lock, which the image installs from: every runtime dependency of
pyproject.toml pinned to a version it allows, with hashes, and nothing left unpinned."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
#: The image's Python and platform, for the lock's environment markers.
IMAGE_ENVIRONMENT = {"python_version": "3.11", "python_full_version": "3.11.15",
                     "sys_platform": "linux", "platform_system": "Linux",
                     "implementation_name": "cpython", "platform_python_implementation": "CPython",
                     "platform_machine": "x86_64", "os_name": "posix", "extra": ""}


def locked() -> dict[str, tuple[str, str | None, list[str]]]:
    """``{name: (version, marker, hashes)}`` of each requirement in the lock."""
    text = (ROOT / "requirements.lock").read_text(encoding="utf-8").replace("\\\n", " ")
    pins = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        spec, *hashes = [part.strip() for part in line.split("--hash=")]
        requirement = Requirement(spec)
        (pin,) = requirement.specifier
        assert pin.operator == "==", line
        pins[canonicalize_name(requirement.name)] = (
            pin.version, str(requirement.marker) if requirement.marker else None, hashes)
    return pins


def test_every_pin_is_exact_and_hashed() -> None:
    """Each locked requirement is ==version with sha256 hashes (pip's --require-hashes)."""
    pins = locked()
    assert len(pins) > 20
    for name, (_, _, hashes) in pins.items():
        assert hashes, name
        assert all(re.fullmatch(r"sha256:[0-9a-f]{64}", h) for h in hashes), name


def test_lock_satisfies_pyproject() -> None:
    """Every runtime dependency of pyproject.toml (and the build backend, setuptools) is
    locked at a version its range allows, for the image's Python."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    pins = locked()
    wanted = [Requirement(line) for line in pyproject["project"]["dependencies"]]
    wanted += [Requirement(line) for line in pyproject["build-system"]["requires"]]
    for requirement in wanted:
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is not in requirements.lock: regenerate it (its header)"
        version, marker, _ = pins[name]
        assert requirement.specifier.contains(version, prereleases=True), (name, version)
        assert marker is None or Marker(marker).evaluate(IMAGE_ENVIRONMENT), name


def test_lock_header_says_how_to_regenerate_it() -> None:
    """The lock's first lines are the command that made it (uv, hashes, Python 3.11)."""
    head = (ROOT / "requirements.lock").read_text(encoding="utf-8").splitlines()[:2]
    assert "uv pip compile pyproject.toml" in head[1]
    assert "--generate-hashes" in head[1] and "--python-version 3.11" in head[1]
