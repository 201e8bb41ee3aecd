"""The project's errors: a user's problem is one line (UserError), a bad parameter value names its
parameter (BadValue, exit 2); first_line turns any exception into the tail of such a line."""


class UserError(Exception):
    """A problem with the user's input (a file, an option, missing data): shown as one line."""

    exit_code = 1  # the command's exit status when this ends it


class BadValue(UserError):
    """A parameter value no run can use. `param` names the library parameter (`patch`, `class_name`);
    the CLI shows it as its option (`--patch`) and exits 2, like a value Click itself rejects."""

    exit_code = 2

    def __init__(self, param: str, message: str):
        self.param = param
        self.message = message
        super().__init__(f"{param}: {message}")


def first_line(error: BaseException, limit: int | None = 200) -> str:
    """An exception as the tail of a one-line error: its message's first line (at most `limit`
    characters), or its type's name when it has no message."""
    text = str(error).strip()
    return text.splitlines()[0][:limit] if text else type(error).__name__
