"""Exceptions that carry one clear, user-facing line (the CLI prints them without a traceback)."""


class VscrError(RuntimeError):
    """A data or runtime problem the user can fix; the message names the file and the problem."""


class StoreError(VscrError):
    """A store is missing, of the wrong kind or schema, incomplete, or disagrees with another store."""


class SourceError(VscrError):
    """A video source cannot be found, decoded or identified."""


class TagError(VscrError):
    """Video-level tags are missing, malformed or name an unknown class."""
