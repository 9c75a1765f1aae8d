"""Errors a user can cause and fix: reported as one line, exit code 2."""

USER_ERROR_EXIT_CODE = 2


class AdxUserError(Exception):
    """Bad input (path, value, override); the message names it and the fix."""
