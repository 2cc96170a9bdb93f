"""The one error type of the launchers: a message a person can act on, in one line."""


class InfraError(Exception):
    """Raise when local infrastructure cannot be started, reached or stopped."""
