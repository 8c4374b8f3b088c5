"""Errors a user can act on.

Library code raises these; only the CLI turns them into one line and exit 1.
Anything else is a bug and keeps its traceback.
"""


class EdgekitError(Exception):
    """A user-facing error: the message says what was wrong and what to do."""


class MissingDependencyError(EdgekitError):
    """An optional dependency is not installed; the message names the extra that brings it."""

    def __init__(self, module: str, extra: str):
        super().__init__(
            f"{module} is not installed: install it with `pip install 'edgekit[{extra}]'`"
        )
        self.module = module
        self.extra = extra


class InvalidModelError(EdgekitError):
    """A model file is missing, corrupt, malformed or hostile."""


class UnknownChoiceError(EdgekitError):
    """A name (target, backend, data set...) that is not one of the valid choices."""

    def __init__(self, kind: str, name: str, choices):
        choices = sorted(choices)
        super().__init__(f"unknown {kind} '{name}': choose one of {', '.join(choices)}")
        self.kind = kind
        self.name = name
        self.choices = choices
