"""Who may read a show's audience figures: any member of the show (viewer role and up), with a
sign-in session or a token carrying the ``read`` or ``analytics`` scope (an ``analytics``-only
token reads figures and nothing else)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends

from amphora.account.deps import CurrentAuth
from amphora.account.errors import MissingScope
from amphora.account.schemas import Scope
from amphora.deps import SessionDep
from amphora.models import Role
from amphora.show.service import ShowAccess, show_access

ANALYTICS_SCOPES = frozenset({Scope.read.value, Scope.analytics.value})


async def analytics_viewer(
    show_id: uuid.UUID, auth: CurrentAuth, session: SessionDep
) -> ShowAccess:
    if not ANALYTICS_SCOPES & auth.scopes:
        raise MissingScope("This token needs the 'analytics' or the 'read' scope.")
    return await show_access(session, show_id=show_id, user=auth.user, minimum=Role.viewer)


AnalyticsViewer = Annotated[ShowAccess, Depends(analytics_viewer)]
