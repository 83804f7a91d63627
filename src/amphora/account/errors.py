"""Expected failures of the accounts domain."""

from amphora.kit.errors import AmphoraError, Conflict, Forbidden, Unauthorized


class EmailTaken(Conflict):
    code = "email_taken"
    message = "An account with this email address already exists."


class InvalidToken(AmphoraError):
    status_code = 400
    code = "invalid_token"
    message = "This link is invalid, already used or expired."


class InvalidCredentials(Unauthorized):
    code = "invalid_credentials"
    message = "Email or password is incorrect."


class AccountDisabled(Forbidden):
    code = "account_disabled"
    message = "This account has been deactivated."


class WeakPassword(AmphoraError):
    status_code = 422
    code = "weak_password"
    message = "This password is not allowed."


class WrongCurrentPassword(AmphoraError):
    status_code = 400
    code = "wrong_current_password"
    message = "The current password is not correct."


class SessionRequired(Forbidden):
    code = "session_required"
    message = "This action needs a signed-in session, not an API token."


class MissingScope(Forbidden):
    code = "missing_scope"


class EmailNotVerified(Forbidden):
    code = "email_not_verified"
    message = "Verify your email address first."


class TooManyEmails(Conflict):
    code = "too_many_emails"
    message = "An account can have at most 10 additional email addresses."
