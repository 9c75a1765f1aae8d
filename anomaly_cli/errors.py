"""Errors a user can cause and fix: reported as one line, exit code 2."""

USER_ERROR_EXIT_CODE = 2


def first_lines(error: BaseException, count: int = 1) -> str:
    """The first non-blank line(s) of an error's message, to quote in a one-line error."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return " ".join(lines[:count]) if lines else type(error).__name__


class AdxUserError(Exception):
    """Bad input (path, value, override); the message names it and the fix."""
