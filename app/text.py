"""Text from disk or from the address bar, shown as the characters it holds.

Run names, file names and messages read from a run folder may hold anything a file name can:
Streamlit would read ``![x](https:host)`` in them as an image to fetch, ``**`` as bold,
``:material/...:`` as an icon and ``$...$`` as a formula. ``plain()`` escapes each character that
gives Markdown (or Streamlit's directives) a meaning where it stands, so the text reads as
written and nothing is fetched; names like ``cgan-report`` or ``generator_0004.pt`` and messages
like ``error: ...`` come out unchanged.
"""

from __future__ import annotations

import re

_ALWAYS = r"\\`*\[\]<>~$"  # backslash, code, emphasis, links and images, HTML, strikethrough, formulas
_SPECIAL = re.compile(
    rf"([{_ALWAYS}])"  # anywhere
    r"|(?<![A-Za-z0-9])(_)|(_)(?![A-Za-z0-9])"  # emphasis by underscores (not inside a word)
    r"|(:)(?=[A-Za-z/])"  # Streamlit's :icon:, :material/...: and :colour[...] directives
    r"|^([#>+\-=|])"  # a heading, quote, list or rule at the start of the line
)
_NUMBERED = re.compile(r"^(\d+)([.)])")  # a numbered list: "1." / "1)" at the start


def plain(text: object) -> str:
    """`text` escaped for st.markdown / st.caption / st.error ...: shown as written, on one line."""
    flat = " ".join(str(text).split())  # newlines and other control characters: one line
    escaped = _SPECIAL.sub(lambda m: "\\" + next(g for g in m.groups() if g is not None), flat)
    return _NUMBERED.sub(r"\1\\\2", escaped)


def code(text: object) -> str:
    """`text` as inline code (a command, a path): in backticks, or escaped where it holds one."""
    flat = " ".join(str(text).split())
    return f"`{flat}`" if "`" not in flat else plain(flat)
