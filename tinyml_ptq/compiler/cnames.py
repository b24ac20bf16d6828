"""Make names from model files safe for generated C.

Tensor and model names are chosen by whoever made the model: they may hold
`*/`, quotes, newlines or preprocessor directives. Nothing from a model reaches
generated code except through these functions.
"""

from __future__ import annotations

import re

_C_KEYWORDS = frozenset(
    "auto break case char const continue default do double else enum extern float for goto if "
    "inline int long register restrict return short signed sizeof static struct switch typedef "
    "union unsigned void volatile while _Bool _Complex _Imaginary alignas alignof bool".split()
)


def c_identifier(name: str, fallback: str = "model") -> str:
    """A valid, lower-case C identifier made from `name`."""
    ident = re.sub(r"[^0-9A-Za-z_]+", "_", name).strip("_").lower()
    ident = re.sub(r"_+", "_", ident)
    if not ident:
        ident = fallback
    if ident[0].isdigit():
        ident = f"m_{ident}"
    if ident in _C_KEYWORDS:
        ident = f"{ident}_"
    return ident[:48]


def c_comment(text: str, limit: int = 80) -> str:
    """Text safe inside a /* */ comment on one line: printable ASCII, no comment delimiters."""
    flat = "".join(ch if 32 <= ord(ch) < 127 else "?" for ch in str(text))
    # Break comment delimiters, and "??" so no trigraph (e.g. "??/" = backslash) survives.
    flat = flat.replace("*/", "* /").replace("/*", "/ *").replace("\\", "/").replace("??", "?_?")
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def c_string(text: str, limit: int = 64) -> str:
    """A C string literal body (no surrounding quotes) with only safe characters."""
    safe = "".join(ch for ch in str(text) if ch.isalnum() or ch in "_-. ")
    return safe[:limit]
