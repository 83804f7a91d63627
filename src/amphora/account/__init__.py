"""Accounts: users, sessions, API tokens, verification, password reset, secondary emails."""
