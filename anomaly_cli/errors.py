"""Errors a user can cause and fix: reported as one line, exit code 2."""

USER_ERROR_EXIT_CODE = 2


def first_lines(error: BaseException, count: int = 1) -> str:
    """The first non-blank line(s) of an error's message, to quote in a one-line error."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return " ".join(lines[:count]) if lines else type(error).__name__


class AdxUserError(Exception):
    """Bad input (path, value, override); the message names it and the fix.

    `next_steps`, when given, replaces the generic advice adx adds after an
    error that leaves a trained model behind.
    """

    def __init__(self, message: str, next_steps: str | None = None):
        super().__init__(one_line(message))
        self.next_steps = next_steps


def one_line(text: str) -> str:
    """`text` with line breaks and other control characters shown as escapes.

    Messages quote the user's input, which may hold a newline (threshold='0\\n0');
    the promise is one line on stderr whatever was typed.
    """
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)
