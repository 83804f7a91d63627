"""The SQLAdmin back office at /admin: superusers only, cookie session, same-origin checks."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import SecretStr
from sqladmin import Admin, ModelView
from sqladmin.authentication import AuthenticationBackend
from starlette.middleware import Middleware
from starlette.requests import Request

from amphora.account import service
from amphora.kit.errors import AmphoraError
from amphora.kit.net import client_ip
from amphora.models import AccessToken, FailedJob, OutboxMail, User
from amphora.runtime import Runtime
from amphora.web.csrf import SameOriginMiddleware

SESSION_COOKIE = "amphora_session"


class SuperuserAuth(AuthenticationBackend):
    """Signs in with the accounts service; the cookie holds a revocable session token."""

    def __init__(self, runtime: Runtime) -> None:
        settings = runtime.settings
        super().__init__(
            secret_key=settings.resolved_secret_key,
            session_cookie=SESSION_COOKIE,
            same_site="strict",
            https_only=settings.cookie_secure,
            max_age=settings.session_ttl_days * 86400,
        )
        self.runtime = runtime

    async def login(self, request: Request) -> bool:
        form = await request.form()
        email = str(form.get("username", "")).strip().lower()
        password = str(form.get("password", ""))
        peer = request.client.host if request.client else None
        ip = client_ip(
            peer, request.headers.get("x-forwarded-for"), self.runtime.settings.trusted_networks
        )
        try:
            async with self.runtime.db.session() as session:
                secret, token = await service.login(
                    session,
                    self.runtime.settings,
                    self.runtime.limiter,
                    email=email,
                    password=SecretStr(password),
                    ip=ip,
                )
                auth = await service.authenticate(session, secret=secret)
                if auth is None or not auth.user.is_superuser:
                    await service.logout(session, token=token)
                    return False
        except AmphoraError:
            return False
        request.session.clear()
        request.session["token"] = secret
        return True

    async def logout(self, request: Request) -> bool:
        secret = request.session.get("token")
        if secret:
            async with self.runtime.db.session() as session:
                auth = await service.authenticate(session, secret=secret)
                if auth is not None:
                    await service.logout(session, token=auth.token)
        request.session.clear()
        return True

    async def authenticate(self, request: Request) -> bool:
        secret = request.session.get("token")
        if not secret:
            return False
        async with self.runtime.db.session(write=False) as session:
            auth = await service.authenticate(session, secret=secret)
        return auth is not None and auth.user.is_superuser

    async def get_user_id(self, request: Request) -> Any:
        return None


class UserAdmin(ModelView, model=User):
    name_plural = "Users"
    column_list = [
        User.email,
        User.display_name,
        User.is_verified,
        User.is_active,
        User.is_superuser,
        User.created_at,
    ]
    column_searchable_list = [User.email, User.display_name]
    column_sortable_list = [User.email, User.created_at]
    form_excluded_columns = [User.password_hash, User.created_at, User.updated_at]
    column_details_exclude_list = [User.password_hash]
    can_create = False
    can_delete = False


class AccessTokenAdmin(ModelView, model=AccessToken):
    name_plural = "Access tokens"
    column_list = [
        AccessToken.user_id,
        AccessToken.kind,
        AccessToken.name,
        AccessToken.token_prefix,
        AccessToken.created_at,
        AccessToken.expires_at,
        AccessToken.revoked_at,
    ]
    column_details_exclude_list = [AccessToken.token_hash]
    can_create = False
    can_edit = False
    can_delete = False


class OutboxMailAdmin(ModelView, model=OutboxMail):
    name_plural = "Mails"
    column_list = [
        OutboxMail.to_address,
        OutboxMail.subject,
        OutboxMail.status,
        OutboxMail.attempts,
        OutboxMail.created_at,
    ]
    # Bodies can hold one-shot links: not shown here.
    column_details_exclude_list = [OutboxMail.text_body, OutboxMail.html_body]
    can_create = False
    can_edit = False


class FailedJobAdmin(ModelView, model=FailedJob):
    name_plural = "Failed jobs"
    column_list = [FailedJob.task_name, FailedJob.failed_at, FailedJob.retried_at]
    can_create = False
    can_edit = False


def mount_admin(app: FastAPI, runtime: Runtime) -> Admin:
    admin = Admin(
        app,
        session_maker=runtime.db.write_sessions,
        base_url="/admin",
        title="Amphora back office",
        authentication_backend=SuperuserAuth(runtime),
        middlewares=[Middleware(SameOriginMiddleware, allowed_origins=[runtime.settings.base_url])],
    )
    for view in (UserAdmin, AccessTokenAdmin, OutboxMailAdmin, FailedJobAdmin):
        admin.add_view(view)
    return admin
