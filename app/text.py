"""Text from disk or from the address bar, shown as the characters it holds.

Run names, file names and messages read from a run folder may hold anything a file name can:
Streamlit would read ``![x](https:host)`` in them as an image to fetch, ``**`` as bold and
``:material/...:`` as an icon. ``plain()`` escapes every character Markdown (and Streamlit's
shortcodes) give a meaning to, so the text reads as written and nothing is fetched.
"""

from __future__ import annotations

import re

# CommonMark escapes any ASCII punctuation with a backslash; these are the ones that mean something.
_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~:$&=])")


def plain(text: object) -> str:
    """`text` escaped for st.markdown / st.caption / st.info ...: shown as written, one line."""
    flat = " ".join(str(text).split())  # control characters and newlines: one line
    return _SPECIAL.sub(r"\\\1", flat)
