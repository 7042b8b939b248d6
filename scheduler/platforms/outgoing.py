"""What to publish for one occurrence: its parts and, for each part, its media.

Pure (no I/O): the files are named here and opened by the adapter when it sends
(``MediaFile.read``), inside the campaigns folder.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from scheduler.errors import SolidarityError
from scheduler.platforms.base import Card, MediaFile, Outgoing

if TYPE_CHECKING:
    from scheduler.campaigns import LoadedCampaign, Media, Post
    from scheduler.planning import Occurrence
    from scheduler.project import Project


def outgoing(
    project: Project,
    lc: LoadedCampaign,
    post: Post,
    occ: Occurrence,
    parts: tuple[str, ...],
    now: datetime,
) -> Outgoing:
    """Describe what to publish for an occurrence: its parts, language, media and card."""
    folder = project.settings.campaigns
    return Outgoing(
        key=occ.key,
        parts=parts,
        created_at=now,
        language=post.language or lc.campaign.language,
        content_warning=post.content_warning,
        media=tuple(_media(folder, m) for m in post.media),
        card=Card(post.link_card.url, post.link_card.title, post.link_card.description)
        if post.link_card
        else None,
        link_preview=post.link_preview,
        visibility=post.visibility,
        part_media=tuple(
            tuple(_media(folder, m) for m in media) for media in part_media(post, len(parts))
        ),
        scheduled_for=occ.scheduled_for,
    )


def _media(folder: Path, media: Media) -> MediaFile:
    """Name one image to send; ``url`` where the campaign gives one (Threads needs it)."""
    url = getattr(media, "url", None)  # until campaigns.Media has the field
    return MediaFile(folder, media.path, media.alt, url if isinstance(url, str) else None)


def part_media(post: Post, count: int | None = None) -> tuple[tuple[Media, ...], ...]:
    """Return the media of each thread part in order (the post's own ``media`` not included).

    Preview shows these under each part. A hand-written thread's parts map one to
    one onto what is sent; if its parts were split to fit (``overflow: thread``),
    the media of a part go with the first piece of it only when that can be told
    (no part was split), else this raises PartMediaError rather than guess.
    """
    thread = post.thread or []
    found = tuple(tuple(p.media) for p in thread)
    if not any(found):
        return ()
    if count is not None and count != len(thread):
        raise PartMediaError(
            f"post '{post.id}': its thread was split into {count} parts to fit, so the images "
            f"of its {len(thread)} parts cannot be placed; shorten the parts"
        )
    return found


class PartMediaError(SolidarityError):
    """A thread's part media cannot be placed on the parts being sent."""
