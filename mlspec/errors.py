"""The exceptions a user can see, and the exit code each one means.

    MlspecError              exit 1   base of every error we report as one line, never a traceback
    ├── SpecError            exit 1   specs are invalid; carries every Diagnostic of the pass
    ├── ProjectError         exit 1   mlspec.yaml or the spec set cannot be found or read
    ├── SchemaStaleError     exit 1   committed JSON Schemas differ from the kinds
    ├── GitError             exit 1   a ref, commit or repository cannot be used as asked (named)
    └── StateError           exit 1   the state cannot be read or written as asked
        ├── StateLockedError exit 1   another run holds the lock (its holder is named)
        ├── StateMissingError exit 1  no state yet (read-only commands show an empty state instead)
        └── StateCorruptError exit 1  the state file is damaged or from a newer mlspec; left untouched

Exit codes are Terraform's, so CI scripts written for it keep working: 0 success; 1 any error,
bad usage included; 2 only from `plan --detailed-exitcode` (success with changes). Anything else
that escapes is a bug in mlspec and is reported as an internal error (exit 1, traceback on --debug).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from mlspec.spec.diagnostics import Diagnostic

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2


class MlspecError(Exception):
    """An error caused by input or environment, reported to the user as one clear message."""

    exit_code: ClassVar[int] = EXIT_ERROR


class ProjectError(MlspecError):
    """The project (mlspec.yaml, the spec paths) cannot be found or read."""


class SpecError(MlspecError):
    """Specs are invalid. Holds all diagnostics of one pass, not just the first."""

    def __init__(self, diagnostics: Sequence[Diagnostic]) -> None:
        self.diagnostics = list(diagnostics)
        n = len(self.diagnostics)
        super().__init__(f"{n} error{'s' if n != 1 else ''} in specs")


class SchemaStaleError(MlspecError):
    """Committed JSON Schemas no longer match the kinds: run `mlspec schema` and commit."""


class GitError(MlspecError):
    """A git ref, commit or repository cannot be used as asked: the message names it and the fix."""


class StateError(MlspecError):
    """The state cannot be read or written as asked."""


class StateLockedError(StateError):
    """Another run holds the state's lock."""


class StateMissingError(StateError):
    """There is no state yet: nothing has been applied."""


class StateCorruptError(StateError):
    """The state file is damaged, or written by a newer mlspec. It is never overwritten."""
