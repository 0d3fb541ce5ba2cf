"""The one exception hierarchy of Engage.

Every error Engage raises on purpose derives from :class:`EngageError`. Messages name the
file, key or column involved, what was expected and what was found.
"""


class EngageError(Exception):
    """Base class of every error Engage raises on purpose.

    ``exit_code`` is what the ``engage`` command exits with when this error ends a run:
    2 for a bad file, option or schema (nothing was written), 1 for a failure while running.
    """

    exit_code = 1


class ConfigError(EngageError):
    """A pipeline file or option is wrong (exit status 2, nothing written)."""

    exit_code = 2


class SchemaError(EngageError):
    """The event log does not have a usable column (exit status 2, nothing written)."""

    exit_code = 2


class RunError(EngageError):
    """A failure while running; tables are left as they were (exit status 1)."""

    exit_code = 1
