"""Every exception a user can see, and the exit code each one means: the one table, in one module.

    MlspecError                exit 1    base of every error we report as one line, never a traceback
    ├── SpecError              exit 1    specs are invalid; carries every Diagnostic of the pass
    ├── ProjectError           exit 1    mlspec.yaml or the spec set cannot be found or read
    ├── SchemaStaleError       exit 1    committed JSON Schemas differ from the kinds
    ├── GitError               exit 1    a ref, commit or repository cannot be used as asked (named)
    ├── PluginError            exit 1    a plugin cannot be loaded, or broke the contract
    ├── PlanError              exit 1    the plan would break a rule of the specs (prevent_destroy)
    ├── PolicyError            exit 1    a step would break a policy only apply can check (gated_serving)
    ├── StalePlanError         exit 1    a saved plan no longer matches the state or specs it was made from
    ├── ApprovalError          exit 1    apply would change things and has no way to ask (no terminal, no -y)
    ├── RegistryError          exit 1    a registry command named a resource, version or alias that is not there
    ├── ServeError             exit 1    `mlspec serve` named no server mlspec started, or it would not start
    ├── PromptError            exit 1    `mlspec.prompts.render`: no such prompt or alias, or values that do not fit
    ├── MonitorError           exit 1    `mlspec monitor run`: a Monitor not applied yet, or not in the specs
    ├── AuditError             exit 1    the audit log cannot be read or written, or its chain is broken
    ├── ArtifactError          exit 1    an artifact cannot be stored or read, or its bytes are not its digest
    ├── StepFailed             exit 1    base of the failures plugins raise from a step (TaskFailed, DataError)
    │   └── PathEscape         exit 1    a path a spec names resolves outside the spec repo
    ├── StepInterrupted        exit 1    a step stopped because it was cancelled (second Ctrl-C): redone next time
    ├── StateError             exit 1    the state cannot be read or written as asked
    │   ├── StateLockedError   exit 1    another run holds the lock (its holder is named)
    │   ├── StateMissingError  exit 1    no state yet (read-only commands show an empty state instead)
    │   └── StateCorruptError  exit 1    the state file is damaged or from a newer mlspec; left untouched
    └── Interrupted            exit 130  the run was stopped (Ctrl-C, SIGTERM); every step that ended is in state

Exit codes are Terraform's, so CI scripts written for it keep working: 0 success; 1 any error,
bad usage included; 2 only from `plan --detailed-exitcode` (success with changes); 3 only from
`mlspec monitor run` (a Monitor found drift: a verdict, not an error); 130 interrupted.
Anything else that escapes is a bug in mlspec and is reported as an internal error (exit 1,
traceback on --debug). tests/test_errors.py holds every class here against this table.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from mlspec.spec.diagnostics import Diagnostic

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2
EXIT_DRIFT = 3  # `mlspec monitor run`: a Monitor found drift (cron and CI act on it)
EXIT_INTERRUPTED = 130


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


class PluginError(MlspecError):
    """A plugin cannot be loaded or broke the contract (wrong API version, duplicate kind, bad outputs)."""


class PlanError(MlspecError):
    """The plan would break a rule of the specs (prevent_destroy)."""


class PolicyError(MlspecError):
    """A step would break a policy of mlspec.yaml that only apply can check."""


class StalePlanError(MlspecError):
    """A saved plan no longer matches the state or the specs it was made from."""


class ApprovalError(MlspecError):
    """Apply has changes to make, no terminal to ask on, and no -y: it refuses, as Terraform does."""


class RegistryError(MlspecError):
    """A registry command named a resource, version or alias that does not exist."""


class ServeError(MlspecError):
    """`mlspec serve` named a resource with no server mlspec started here, or the server would not start."""


class PromptError(MlspecError):
    """`mlspec.prompts.render`: the prompt, alias or values asked for cannot give a text (which and why)."""


class MonitorError(MlspecError):
    """`mlspec monitor run`: a Monitor that cannot run (not applied yet, no such address, no plugin)."""


class AuditError(MlspecError):
    """The audit log cannot be read or written, or its hash chain does not hold."""


class ArtifactError(MlspecError):
    """An artifact cannot be stored or read, or its bytes are not what its name says."""


class StepFailed(MlspecError):
    """A step could not do its work; the message says why. Plugins raise subclasses of it."""


class PathEscape(StepFailed):
    """A path a spec names resolves outside the spec repo (a symlink, `..`): refused, nothing touched."""


class StepInterrupted(MlspecError):
    """Raised by a plugin that stopped because its runtime was cancelled: the step is recorded interrupted."""


class StateError(MlspecError):
    """The state cannot be read or written as asked."""


class StateLockedError(StateError):
    """Another run holds the state's lock."""


class StateMissingError(StateError):
    """There is no state yet: nothing has been applied."""


class StateCorruptError(StateError):
    """The state file is damaged, or written by a newer mlspec. It is never overwritten."""


class Interrupted(MlspecError):
    """The run was stopped by Ctrl-C or a signal: every step that ended is in state; apply again to finish."""

    exit_code: ClassVar[int] = EXIT_INTERRUPTED
