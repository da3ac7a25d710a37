"""Exceptions that carry one clear, user-facing line (the CLI prints them without a traceback)."""


class VscrError(RuntimeError):
    """A data or runtime problem the user can fix; the message names the file and the problem."""


class StoreError(VscrError):
    """A store is missing, of the wrong kind or schema, incomplete, or disagrees with another store."""


class SourceError(VscrError):
    """A video source cannot be found, decoded or identified."""


class TagError(VscrError):
    """Video-level tags are missing, malformed or name an unknown class."""


def first_line(error: BaseException) -> str:
    """The first line of an error's message, at most 160 characters (its type's name when empty)."""
    text = str(error).strip().splitlines()
    line = text[0] if text else type(error).__name__
    return line if len(line) <= 160 else line[:157] + "..."
