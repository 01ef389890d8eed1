"""Forgiving name matching: the way people type Page, application and key names.

Case, accents, emoji and punctuation are ignored ("acme coffee tea" finds "Acme Coffee & Tea ☕");
a unique prefix or a match on whole words is enough. Ids are never matched loosely: an id
either equals or it does not. When nothing or several things match, callers answer
"Did you mean…?" with the candidates this module ranks.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
MAX_SUGGESTIONS = 5


def normalize(text: str) -> str:
    """Letters and digits of any script, case-folded, accents dropped; everything else a space."""
    decomposed = unicodedata.normalize("NFKD", text)
    out = []
    for ch in decomposed:
        cat = unicodedata.category(ch)
        if cat.startswith("M"):
            continue  # combining accents: "Café" -> "cafe"
        out.append(ch.casefold() if cat[0] in "LN" else " ")
    return " ".join("".join(out).split())


@dataclass(frozen=True)
class Found(Generic[T]):
    """The result of a lookup: ``item`` when exactly one thing fits, else ``candidates`` to offer."""

    item: T | None
    candidates: tuple[T, ...] = ()
    exact: bool = False  # matched by id or by the whole name (not a prefix or a word)
    several: bool = False  # the candidates all match; otherwise they are only the nearest names


def _words_match(wanted: list[str], name: list[str]) -> bool:
    """Every typed word starts a distinct word of the name, in order."""
    i = 0
    for w in wanted:
        while i < len(name) and not name[i].startswith(w):
            i += 1
        if i == len(name):
            return False
        i += 1
    return True


def find(items: Sequence[T], wanted: str, *, ident: Callable[[T], str], name: Callable[[T], str]) -> Found[T]:
    """Id, then whole name, then unique prefix, then word match; candidates when that is not one thing."""
    wanted = wanted.strip()
    for item in items:
        if ident(item) == wanted:
            return Found(item, exact=True)
    key = normalize(wanted)
    if not key:
        return Found(None)
    whole = [i for i in items if normalize(name(i)) == key]
    if len(whole) == 1:
        return Found(whole[0], exact=True)
    if whole:
        return Found(None, tuple(whole[:MAX_SUGGESTIONS]), several=True)
    prefix = [i for i in items if normalize(name(i)).startswith(key)]
    if len(prefix) == 1:
        return Found(prefix[0])
    words = key.split()
    loose = [i for i in items if i not in prefix and _words_match(words, normalize(name(i)).split())]
    if not prefix and len(loose) == 1:
        return Found(loose[0])
    several = prefix + loose
    if several:
        return Found(None, tuple(several[:MAX_SUGGESTIONS]), several=True)
    return Found(None, tuple(_near(items, key, name)))


def _near(items: Sequence[T], key: str, name: Callable[[T], str]) -> list[T]:
    """Nothing fits: the names sharing a word (or most letters) with what was typed, best first."""
    typed = set(key.split())
    scored = []
    for item in items:
        words = set(normalize(name(item)).split())
        shared = sum(1 for t in typed for w in words if w.startswith(t[:3]) and len(t) >= 3)
        if shared:
            scored.append((-shared, normalize(name(item)), item))
    scored.sort(key=lambda s: (s[0], s[1]))
    return [s[2] for s in scored[:MAX_SUGGESTIONS]]


def suggest(
    items: Sequence[T], typed: str, *, ident: Callable[[T], str], name: Callable[[T], str], limit: int = 100
) -> list[T]:
    """What a type-ahead list shows for the text typed so far: names that start with it first, then
    names with a word that starts with it, then names containing it; ids that start with it too."""
    key = normalize(typed)
    if not key:
        return list(items[:limit])
    ranked: list[tuple[int, int, T]] = []
    for n, item in enumerate(items):
        label = normalize(name(item))
        if label.startswith(key) or ident(item).startswith(typed.strip()):
            rank = 0
        elif _words_match(key.split(), label.split()):
            rank = 1
        elif key in label:
            rank = 2
        else:
            continue
        ranked.append((rank, n, item))
    ranked.sort(key=lambda r: (r[0], r[1]))
    return [r[2] for r in ranked[:limit]]
