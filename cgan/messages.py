"""Messages for the user: one line each, whatever a name read from disk holds; N_ marks an English
message for the app's catalog, and a Problem keeps the template and values of its line."""

from __future__ import annotations

import unicodedata

_ESCAPED = ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")


def one_line(text: object) -> str:
    """`text` with control and line-breaking characters written as escapes (\\n, \\x1b, \\u2028):
    a name from disk may hold them, and a message stays one line."""
    text = str(text)
    if text.isprintable():
        return text
    return "".join(repr(c)[1:-1] if unicodedata.category(c) in _ESCAPED else c for c in text)


class RunError(RuntimeError):
    """A run cannot be read as asked; the message is one line for the user (control characters
    of names from disk shown as escapes)."""

    def __init__(self, message: object = ""):
        super().__init__(one_line(message))


def N_(text: str) -> str:
    """Marks a message for the app's translation catalog; the library itself speaks English."""
    return text


class Problem(str):
    """What is wrong with one value, as one English line (it is a str), with the `template` and
    `values` it was made from."""

    template: str
    values: dict[str, str]

    def __new__(cls, template: str, **values: str) -> Problem:
        problem = super().__new__(cls, template.format(**values))
        problem.template, problem.values = template, values
        return problem
