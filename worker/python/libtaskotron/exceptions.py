"""libtaskotron's exception hierarchy (the names tasks may catch or raise)."""


class TaskotronError(Exception):
    """Base of every Taskotron error."""


class TaskotronValueError(TaskotronError, ValueError):
    """A value is not what was expected (e.g. an unknown outcome)."""


class TaskotronDirectiveError(TaskotronError):
    """A directive failed."""


class TaskotronRemoteError(TaskotronError):
    """A remote service failed."""
