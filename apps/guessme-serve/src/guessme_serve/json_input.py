"""JSON parsing for both transports (POST bodies and WebSocket messages).

Python's parser recurses once per nesting level and gives up with a RecursionError (about 1,000
levels), which is not a ValueError: a 200 kB message of nested brackets would surface as a server
fault. It is bad input, so it is reported as a decode error like any other malformed JSON.
"""

import json
from typing import Any


class JSONNestingError(json.JSONDecodeError):
    """JSON nested deeper than the parser follows. A JSONDecodeError, so FastAPI's invalid-JSON path
    (422) and every `except ValueError` handle it; str() is the message alone (no position)."""

    MESSAGE = "JSON nesting is too deep"

    def __init__(self, doc: str) -> None:
        super().__init__(self.MESSAGE, doc, 0)

    def __str__(self) -> str:
        return self.msg


def parse_json(data: str | bytes) -> Any:
    """json.loads; nesting too deep to parse raises JSONNestingError."""
    try:
        return json.loads(data)
    except RecursionError:
        doc = data if isinstance(data, str) else data.decode("utf-8", "replace")
        raise JSONNestingError(doc) from None
