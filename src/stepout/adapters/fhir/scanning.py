"""A Bundle's JSON read one entry at a time: memory holds one entry's objects, not the whole
Bundle's (which take ten times the file's size). The text is read with the standard library's
decoder, value by value; whatever is not valid JSON raises `json.JSONDecodeError`."""

import json
import re
from collections.abc import Iterator
from typing import Any, Final, Literal

_SPACE: Final = re.compile(r"[ \t\n\r]*")


def _not_a_number(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_DECODER: Final = json.JSONDecoder(parse_constant=_not_a_number)

Item = tuple[Literal["field", "entry"], Any]  # ("field", (name, value)) or ("entry", item)


def _skip(text: str, at: int) -> int:
    found = _SPACE.match(text, at)
    assert found is not None  # the pattern matches the empty string
    return found.end()


def _expect(text: str, at: int, char: str, what: str) -> int:
    """The position after `char` at `at` (after spaces), or a JSONDecodeError."""
    at = _skip(text, at)
    if text[at : at + 1] != char:
        raise json.JSONDecodeError(f"expected {what}", text, at)
    return _skip(text, at + 1)


def _value(text: str, at: int) -> tuple[Any, int]:
    try:
        return _DECODER.raw_decode(text, at)
    except ValueError as error:
        if isinstance(error, json.JSONDecodeError):
            raise
        raise json.JSONDecodeError(str(error), text, at) from None


def bundle_items(text: str) -> Iterator[Item]:
    """The members of the top-level JSON object in `text`, in order: ("entry", item) for each
    item of an `entry` array, ("field", (name, value)) for every other member (and for an
    `entry` that is not an array)."""
    at = _expect(text, 0, "{", "a JSON object")
    if text[at : at + 1] == "}":
        at += 1
    else:
        while True:
            if text[at : at + 1] != '"':
                raise json.JSONDecodeError("expected a member name", text, at)
            name, at = _value(text, at)
            at = _expect(text, at, ":", "':'")
            if name == "entry" and text[at : at + 1] == "[":
                at = _skip(text, at + 1)
                if text[at : at + 1] == "]":
                    at += 1
                else:
                    while True:
                        item, at = _value(text, at)
                        yield "entry", item
                        at = _skip(text, at)
                        if text[at : at + 1] == "]":
                            at += 1
                            break
                        at = _expect(text, at, ",", "',' or ']'")
            else:
                value, at = _value(text, at)
                yield "field", (name, value)
            at = _skip(text, at)
            if text[at : at + 1] == "}":
                at += 1
                break
            at = _expect(text, at, ",", "',' or '}'")
    at = _skip(text, at)
    if at != len(text):
        raise json.JSONDecodeError("extra data after the Bundle", text, at)
