"""The API's JSON parser: DRF's, refusing what no field can hold before any view sees it.

JSON can spell things that decode to Python values the rest of the portal cannot handle, and
each used to surface as a 500 somewhere far from the cause:

- a lone surrogate (`"\\ud800"`) is a str that cannot be encoded as UTF-8: hashing the trail
  event, rendering the error message or writing to the database fails;
- a NUL character (`"\\u0000"`) is refused by PostgreSQL in text and jsonb columns;
- an integer beyond the signed 64-bit range overflows SQLite and `float()`; a number like `1e999`
  decodes to infinity, which JSON itself cannot express;
- a body nested thousands deep exhausts the decoder's recursion limit, and anything nested
  deeper than a few levels is no request body of this API.

Each is refused here with a 400 that names the field (its path inside the body), so one check
covers every endpoint, present and future.
"""

from __future__ import annotations

import math

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

MAX_DEPTH = 32  # the deepest body the API takes is four levels (a request's settings); 32 is generous
INT64 = 2**63 - 1


class StrictJSONParser(JSONParser):
    """`application/json`, as DRF parses it, then checked by `find_unsafe_value`."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(f"The JSON body is nested too deeply: at most {MAX_DEPTH} levels of objects and arrays.") from None
        found = find_unsafe_value(data)
        if found is not None:
            field, sentence = found
            raise ParseError({field: [sentence]})
        return data


def find_unsafe_value(data, max_depth: int = MAX_DEPTH) -> tuple[str, str] | None:
    """The first value no field can hold, as (top-level field, sentence naming where), or None.

    Iterative, so a deep value cannot exhaust the stack here either."""
    stack = [(data, ())]
    while stack:
        value, path = stack.pop()
        if len(path) > max_depth:
            return _field(path), f"{_where(path)} is nested more than {max_depth} levels deep; no field takes that."
        if isinstance(value, str):
            if (problem := _text_problem(value)):
                return _field(path), f"{_where(path)} {problem}"
        elif isinstance(value, bool) or value is None:
            continue
        elif isinstance(value, int):
            if abs(value) > INT64:
                return _field(path), f"{_where(path)} is a number beyond the 64-bit range (±{INT64}); no field takes it."
        elif isinstance(value, float):
            if not math.isfinite(value):
                return _field(path), f"{_where(path)} is a number too large to represent; send a finite number."
        elif isinstance(value, dict):
            for key, item in value.items():
                if (problem := _text_problem(key)):
                    return _field(path), f"A key in {_where(path) if path else 'the body'} {problem}"
                stack.append((item, (*path, key)))
        elif isinstance(value, list):
            stack.extend((item, (*path, index)) for index, item in enumerate(value))
    return None


def _text_problem(text: str) -> str:
    if "\x00" in text:
        return "holds a NUL character (\\u0000), which no text field accepts; remove it."
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return (f"holds a lone surrogate (\\u{ord(text[exc.start]):04x}), which is not a character: "
                "send text as UTF-8, with each surrogate pair complete.")
    return ""


def _field(path: tuple) -> str:
    """The key DRF's error shape files the problem under: the top-level field, when there is one."""
    if path and isinstance(path[0], str) and not _text_problem(path[0]):
        return path[0]
    return "non_field_errors"


def _where(path: tuple) -> str:
    if not path:
        return "The body"
    shown = [f"[{part}]" if isinstance(part, int) else (part if not _text_problem(part) else ascii(part)) for part in path]
    return "“" + ".".join(shown).replace(".[", "[") + "”"
