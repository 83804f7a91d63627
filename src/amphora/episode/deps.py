"""'The episode the caller may …' dependencies (roles come from the episode's show)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends

from amphora.account.deps import CurrentAuth, ensure_scope
from amphora.account.schemas import Scope
from amphora.deps import SessionDep
from amphora.episode.service import EpisodeAccess, episode_access
from amphora.models import Role


def episode_role(
    minimum: Role, *, deleted: bool = False
) -> Callable[..., Coroutine[Any, Any, EpisodeAccess]]:
    scope = Scope.read if minimum is Role.viewer else Scope.write

    async def dependency(
        episode_id: uuid.UUID, auth: CurrentAuth, session: SessionDep
    ) -> EpisodeAccess:
        ensure_scope(auth, scope)
        return await episode_access(
            session, episode_id=episode_id, user=auth.user, minimum=minimum, deleted=deleted
        )

    return dependency


EpisodeViewer = Annotated[EpisodeAccess, Depends(episode_role(Role.viewer))]
EpisodeEditor = Annotated[EpisodeAccess, Depends(episode_role(Role.editor))]
DeletedEpisodeEditor = Annotated[EpisodeAccess, Depends(episode_role(Role.editor, deleted=True))]
