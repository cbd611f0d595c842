"""The projections' errors.

ProjectionError
 +-- StaleProjectionError        (projections.checker: the projection is too far behind)
 +-- ProjectionUnavailableError  the projection's database cannot be read or written
      +-- ProjectionLockedError  another writer (a rebuild) holds it for now
"""


class ProjectionError(Exception):
    """Base of the projections' errors."""


class ProjectionUnavailableError(ProjectionError):
    """The projection's database failed; ``cause`` names the driver's error, without content."""

    def __init__(self, cause: str) -> None:
        super().__init__(f"the projection cannot be read or written: {cause}")
        self.cause = cause


class ProjectionLockedError(ProjectionUnavailableError):
    """Another connection holds the projection's write lock (a rebuild): try again later."""
