"""Errors of the analytics domain."""

from __future__ import annotations

from amphora.kit.errors import AmphoraError, NotFound


class BadPeriod(AmphoraError):
    status_code = 422
    code = "invalid_period"
    message = "The period is not valid."


class UnknownEpisode(NotFound):
    message = "No such episode in this show."


class UserAgentsMissing(AmphoraError):
    status_code = 503
    code = "user_agents_missing"
    message = (
        "The user-agent data set is not installed: run 'amphora analytics update-user-agents'."
    )
