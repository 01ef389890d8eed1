"""What Slack does to a slash command's text when the command sets ``should_escape: true``.

Slack escapes ``&``, ``<`` and ``>``, and turns what it recognises into its own markup: a
``#channel`` it knows becomes ``<#C0123|channel>``, an ``@person`` ``<@U0123|person>``, and a web
address ``<https://…>``. Anything it does not recognise stays plain text, so fblink must read a
plain ``#name`` too.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

TOKEN = re.compile(r"(?<![\w&])(#[a-z0-9_-]+|@[a-z0-9._-]+|https?://[^\s<>]+)", re.IGNORECASE)


def escape_command_text(text: str, channels: Mapping[str, str], people: Mapping[str, str]) -> str:
    """``channels`` and ``people``: name -> id, as the workspace knows them."""
    out: list[str] = []
    last = 0
    for m in TOKEN.finditer(text):
        out.append(_amp(text[last : m.start()]))
        word = m.group(0)
        if word.startswith("#") and word[1:].lower() in channels:
            out.append(f"<#{channels[word[1:].lower()]}|{word[1:].lower()}>")
        elif word.startswith("@") and word[1:].lower() in people:
            out.append(f"<@{people[word[1:].lower()]}|{word[1:].lower()}>")
        elif word.lower().startswith(("http://", "https://")):
            out.append(f"<{_amp(word)}>")
        else:
            out.append(_amp(word))
        last = m.end()
    out.append(_amp(text[last:]))
    return "".join(out)


def _amp(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
