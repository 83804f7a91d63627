"""Storing artwork: process the image off the event loop, write every size, record the row."""

from __future__ import annotations

import uuid

import anyio
from sqlalchemy.ext.asyncio import AsyncSession

from amphora.kit.db import new_id
from amphora.kit.errors import AmphoraError
from amphora.kit.storage import Storage
from amphora.models import Artwork, User

MAX_ARTWORK_BYTES = 30 * 1024 * 1024


class InvalidArtwork(AmphoraError):
    status_code = 422


async def store_artwork(
    session: AsyncSession, storage: Storage, *, show_id: uuid.UUID, user: User, data: bytes
) -> Artwork:
    """A new artwork (new id, so a new URL). Files are written before the row; if anything
    fails the files already written are removed, so nothing is left behind."""
    from amphora.media.artwork import ArtworkError, process_artwork  # Pillow, when needed

    try:
        processed = await anyio.to_thread.run_sync(lambda: process_artwork(data))
    except ArtworkError as exc:
        raise InvalidArtwork(exc.message, code=exc.code) from exc
    artwork_id = new_id()
    prefix = f"artwork/{show_id}/{artwork_id}"
    variants = []
    written: list[str] = []
    try:
        for variant in processed.variants:
            key = f"{prefix}/{variant.name}.{variant.extension}"
            await storage.write_bytes(key, variant.data, content_type=variant.content_type)
            written.append(key)
            variants.append(
                {
                    "name": variant.name,
                    "key": key,
                    "width": variant.width,
                    "content_type": variant.content_type,
                    "size": len(variant.data),
                }
            )
    except BaseException:
        for key in written:
            await storage.delete(key)
        raise
    master = processed.master
    artwork = Artwork(
        id=artwork_id,
        show_id=show_id,
        owner_id=user.id,
        key_prefix=prefix,
        master_key=variants[0]["key"],
        content_type=master.content_type,
        extension=master.extension,
        width=master.width,
        sha256=master.sha256_hex,
        total_bytes=sum(v["size"] for v in variants),
        variants=variants,
    )
    session.add(artwork)
    await session.flush()
    return artwork


def artwork_urls(base_url: str, artwork: Artwork) -> dict[str, str]:
    """Public URLs of every size; they change whenever the artwork does."""
    return {
        v["name"]: f"{base_url}/artwork/{artwork.id}/{v['name']}.{v['key'].rsplit('.', 1)[-1]}"
        for v in artwork.variants
    }
