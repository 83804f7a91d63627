"""Reading upload bodies with a size cap, never trusting a declared length."""

from __future__ import annotations

from fastapi import UploadFile

from amphora.kit.errors import PayloadTooLarge


async def read_limited(file: UploadFile, limit: int) -> bytes:
    """The whole (small) file, refusing it as soon as it passes ``limit`` bytes."""
    chunks: list[bytes] = []
    total = 0
    while chunk := await file.read(1024 * 1024):
        total += len(chunk)
        if total > limit:
            raise PayloadTooLarge(f"The file is larger than the limit of {limit} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)
