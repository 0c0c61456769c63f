"""Reading a JSON document a person hands the CLI: a file, or ``-`` for stdin.

One reader for every command that takes one (``callwatch classify`` with saved Events API
pages, ``callwatch routes test`` with an alert), so each says what is wrong the same way.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from service.errors import InvalidInput


def read_json(path: str) -> Any:
    """The JSON in ``path`` (``-``: stdin); ``InvalidInput`` naming the path and what is wrong."""
    try:
        if path == "-":
            text = sys.stdin.read()
        else:
            with open(path, encoding="utf-8") as file:
                text = file.read()
    except FileNotFoundError:
        raise InvalidInput(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise InvalidInput(f"{path}: cannot read: {error}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise InvalidInput(f"{path}: not JSON ({error})") from None
