"""Request and response bodies of the accounts API."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, EmailStr, Field, SecretStr


def _lower(value: str) -> str:
    return value.strip().lower()


Email = Annotated[EmailStr, AfterValidator(_lower), Field(max_length=320)]
Password = Annotated[SecretStr, Field(min_length=10, max_length=1024)]
DisplayName = Annotated[str, Field(min_length=1, max_length=120)]
OneTimeSecret = Annotated[str, Field(min_length=1, max_length=200)]


class Input(BaseModel):
    """Input bodies refuse unknown fields: a typo should not be silently ignored."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Output(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Scope(StrEnum):
    read = "read"
    write = "write"
    analytics = "analytics"


ALL_SCOPES = frozenset(Scope)


class RegisterIn(Input):
    email: Email
    password: Password
    display_name: DisplayName

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "email": "ada@example.com",
                    "password": "correct horse battery",
                    "display_name": "Ada Lovelace",
                }
            ]
        }
    )


class TokenIn(Input):
    token: OneTimeSecret


class EmailIn(Input):
    email: Email


class ResetPasswordIn(Input):
    token: OneTimeSecret
    password: Password


class LoginIn(Input):
    email: Email
    password: Annotated[SecretStr, Field(min_length=1, max_length=1024)]

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"email": "ada@example.com", "password": "correct horse battery"}]
        }
    )


class LoginOut(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105
    expires_at: datetime


class UserRead(Output):
    id: uuid.UUID
    email: str
    display_name: str
    is_verified: bool
    is_active: bool
    is_superuser: bool
    pending_email: str | None
    created_at: datetime


class UserUpdate(Input):
    display_name: DisplayName | None = None
    email: Email | None = None
    password: Password | None = None
    current_password: Annotated[SecretStr, Field(max_length=1024)] | None = None


class UserEmailRead(Output):
    id: uuid.UUID
    email: str
    verified_at: datetime | None
    created_at: datetime


class TokenCreate(Input):
    name: Annotated[str, Field(min_length=1, max_length=100)]
    scopes: Annotated[list[Scope], Field(min_length=1, max_length=len(Scope))]
    expires_in_days: Annotated[int, Field(ge=1, le=3650)] | None = None

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"name": "CI uploads", "scopes": ["read", "write"], "expires_in_days": 90}]
        }
    )


class TokenRead(Output):
    id: uuid.UUID
    name: str
    scopes: list[str]
    token_prefix: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None


class TokenCreated(TokenRead):
    token: str = Field(description="The secret. Shown once: store it now.")


class AdminUserRead(UserRead):
    storage_quota_bytes: int | None
    overage_allowance_bytes: int
    updated_at: datetime


class AdminUserUpdate(Input):
    is_active: bool | None = None
    is_verified: bool | None = None
    is_superuser: bool | None = None
    storage_quota_bytes: Annotated[int, Field(ge=0)] | None = None
    overage_allowance_bytes: Annotated[int, Field(ge=0)] | None = None


class AdminUserPage(BaseModel):
    items: list[AdminUserRead]
    total: int
