"""'The show the caller may …' dependencies, written once over ``service.show_access``."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends

from amphora.account.deps import CurrentAuth, ensure_scope
from amphora.account.schemas import Scope
from amphora.deps import SessionDep
from amphora.models import Role
from amphora.show.service import ShowAccess, show_access


def show_role(
    minimum: Role, *, deleted: bool = False
) -> Callable[..., Coroutine[Any, Any, ShowAccess]]:
    """Viewers read; editors (and `write` tokens) change; admins manage the team and delete."""
    scope = Scope.read if minimum is Role.viewer else Scope.write

    async def dependency(show_id: uuid.UUID, auth: CurrentAuth, session: SessionDep) -> ShowAccess:
        ensure_scope(auth, scope)
        return await show_access(
            session, show_id=show_id, user=auth.user, minimum=minimum, deleted=deleted
        )

    return dependency


ShowViewer = Annotated[ShowAccess, Depends(show_role(Role.viewer))]
ShowEditor = Annotated[ShowAccess, Depends(show_role(Role.editor))]
ShowAdmin = Annotated[ShowAccess, Depends(show_role(Role.admin))]
DeletedShowAdmin = Annotated[ShowAccess, Depends(show_role(Role.admin, deleted=True))]
