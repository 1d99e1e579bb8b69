"""What a host answers: a command's result and the error of one that had to succeed.

Apart from the transport (`ssh`), so the code that only reads answers (phases, the target, the nemesis, the
client's parser) does not load paramiko: `invoke --list` and the `--fault` help stay fast.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class CommandResult:
    """One command on one host. `error` is set when it could not run or timed out (then `exit_code` may be
    None); a command that ran and failed has `error=None` and a non-zero `exit_code`."""

    host: str
    command: str
    exit_code: int | None
    stdout: str
    stderr: str
    duration_s: float
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.exit_code == 0

    def describe(self) -> str:
        """One line for logs and error messages: what ran where and how it ended."""
        how = self.error or f"exit {self.exit_code}"
        tail = (self.stderr.strip() or self.stdout.strip())[-300:]
        return f"{self.host}: `{self.command}` -> {how}" + (f": {tail}" if tail else "")

    def check(self) -> CommandResult:
        """Return self when ok, else raise HostError naming the host (for callers that cannot go on)."""
        if not self.ok:
            raise HostError(self.host, self.describe())
        return self


class HostError(Exception):
    """A host operation that must succeed did not; `host` names the host."""

    def __init__(self, host: str, message: str) -> None:
        super().__init__(message if message.startswith(f"{host}:") else f"{host}: {message}")
        self.host = host
