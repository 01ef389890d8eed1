"""Finding the Page, link, key and application a user means.

Values that are ids (button values, stored links, modal submissions) are matched by id
only. Free command text is matched the way people type (:mod:`handlers.names`): exact id,
then whole name, then a unique prefix or word match, ignoring case, accents, emoji and
punctuation; only then is the word "app" taken as the keyword that starts an application
name. When more than one reading fits exactly, the user is asked to quote the name; when
nothing or several things fit loosely, the answer is "Did you mean…?" with a button per
candidate that runs the command again with its id.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from bot import blocks
from bot.linking import LinkRefused
from bot.services import Services
from bot.store import Link, StoredPage
from bot.vonage import Credentials
from handlers import key_policy, names

T = TypeVar("T", StoredPage, Link)
RERUN = "rerun"  # action_id prefix of "Did you mean" buttons: rerun_0, rerun_1, ...


def _name(item: StoredPage | Link) -> str:
    return item.name if isinstance(item, StoredPage) else item.page_name


def _ident(item: StoredPage | Link) -> str:
    return item.page_id


def by_id(items: Sequence[T], page_id: str) -> T | None:
    """Ids stay ids: never falls back to names."""
    return next((i for i in items if i.page_id == page_id), None)


def find(items: Sequence[T], wanted: str) -> names.Found[T]:
    """The Page (or link) a person typed, with candidates when it is not exactly one."""
    return names.find(items, wanted, ident=_ident, name=_name)


def by_text(items: Sequence[T], wanted: str) -> T | None:
    """The one item the text names (id, whole name, unique prefix or word match), else None."""
    return find(items, wanted).item


@dataclass(frozen=True)
class Reading:
    """One way to read `<page> [api-key] [app <application>]`."""

    target: StoredPage | Link
    api_key: str | None
    application: str | None

    def command(self, verb: str) -> str:
        """The command again, naming the Page by id (what a "Did you mean" button runs)."""
        words = [self.target.page_id]
        if self.api_key:
            words.append(self.api_key)
        if self.application:
            words += ["app", self.application]
        return f"{verb} {shlex.join(words)}"

    def label(self) -> str:
        return _name(self.target) + (f" · app {self.application}" if self.application else "")


class Ambiguous(LinkRefused):
    """More than one reading of the command fits."""


class DidYouMean(LinkRefused):
    """Nothing or several things fit loosely: carries the message that offers the candidates."""

    def __init__(self, message: dict[str, Any]) -> None:
        super().__init__(str(message.get("text") or "Did you mean…?"))
        self.message = message


def did_you_mean(intro: str, choices: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """ "Did you mean…?" with one button per (label, command text); each runs `/fblink <text>` as the clicker."""
    text = f":thinking_face: {intro} Did you mean…?"
    buttons = [
        blocks.button(label, f"{RERUN}_{i}", json.dumps({"t": command})[:2000])
        for i, (label, command) in enumerate(choices[: names.MAX_SUGGESTIONS])
    ]
    return blocks.message(text, [blocks.section(text), blocks.actions(*buttons)])


def read_target(
    items: Sequence[T],
    words: Sequence[str],
    *,
    with_key: bool,
    verb: str = "link",
    keys: Collection[str] | None = None,
) -> Reading | None:
    """The one reading of the words that names an existing Page; None when nothing comes close.

    Raises :class:`Ambiguous` when several readings fit exactly (e.g. Pages "Shop" and "Shop app
    Deals"), and :class:`DidYouMean` when no reading fits exactly and the loose ones are not one.
    ``keys``: the configured API keys; a loose reading whose key is not one of them is dropped.
    """
    words = list(words)
    exact: dict[tuple[str, str | None, str | None], Reading] = {}
    loose: dict[tuple[str, str | None, str | None], Reading] = {}
    near: dict[tuple[str, str | None, str | None], Reading] = {}

    def consider(page_words: list[str], key: str | None, app: list[str] | None) -> None:
        if not page_words or (app is not None and not app):
            return
        found = find(items, " ".join(page_words))
        application = " ".join(app) if app is not None else None
        if found.item is not None:
            reading = Reading(found.item, key, application)
            if found.exact:
                exact[(found.item.page_id, key, application)] = reading
            elif key is None or keys is None or key in keys:
                loose[(found.item.page_id, key, application)] = reading
            return
        if key is None or keys is None or key in keys:
            for item in found.candidates:
                reading = Reading(item, key, application)
                (loose if found.several else near).setdefault((item.page_id, key, application), reading)

    consider(words, None, None)
    if with_key and len(words) > 1:
        consider(words[:-1], words[-1], None)
    for i, word in enumerate(words):
        if i and word.lower() == "app":
            consider(words[:i], None, words[i + 1 :])
            if with_key and i > 1:
                consider(words[: i - 1], words[i - 1], words[i + 1 :])
    if len(exact) > 1:
        options = "; ".join(
            f"Page *{blocks.escape(_name(r.target))}*"
            + (f" with key `{blocks.escape(r.api_key)}`" if r.api_key else "")
            + (f" and application “{blocks.escape(r.application)}”" if r.application else "")
            for r in exact.values()
        )
        raise Ambiguous(
            f"That command can be read more than one way: {options}. Put the Page name in quotes, "
            'e.g. `/fblink link "Shop app Deals"`, or use the Page id.'
        )
    if exact:
        return next(iter(exact.values()))
    if len({r.target.page_id for r in loose.values()}) == 1:
        return next(iter(loose.values()))  # one Page, however the rest of the words are read
    offered = list(loose.values()) or list(near.values())
    if not offered:
        return None
    seen: set[str] = set()
    choices = []
    for r in offered:
        if r.target.page_id not in seen:
            seen.add(r.target.page_id)
            choices.append((r.label(), r.command(verb)))
    what = "Page you manage" if items and isinstance(items[0], StoredPage) else "linked Page"
    intro = (
        f"More than one {what} matches “{blocks.escape(' '.join(words))}”."
        if loose
        else f"No {what} is called “{blocks.escape(' '.join(words))}”."
    )
    raise DidYouMean(did_you_mean(intro, choices))


def not_managed(wanted: str) -> str:
    return (
        f"You don't manage a Facebook Page called “{blocks.escape(wanted)}”, or your Facebook login doesn't "
        "list it. Run `/fblink pages` to see yours; if it is missing there, run `/fblink login` and select it."
    )


def not_linked(wanted: str) -> str:
    return f"No Page called “{blocks.escape(wanted)}” is linked in this workspace. `/fblink status` lists the links."


async def creds_or_refuse(services: Services, team_id: str, api_key: str | None, user_id: str) -> Credentials:
    """The key's credentials, under the key policy (handlers.key_policy)."""
    return await key_policy.credentials_for(services, team_id, user_id, api_key)
