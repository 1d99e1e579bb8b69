"""Exceptions shared by the store, the CLI, the HTTP server and the MCP server."""

from __future__ import annotations


class RefPeerError(Exception):
    """Base class: anything the reference peer reports to its caller as a clean error."""


class ValidationError(RefPeerError):
    """Bad input. `status` is the HTTP status the real server uses (400 rule violation, 422 wrong shape)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Conflict(RefPeerError):
    """A (title, namespace) pair already exists and the caller asked for on_conflict=error."""

    def __init__(self, existing_id: str, title: str = "", namespace: str = "") -> None:
        super().__init__(f"memory with title '{title}' already exists in namespace '{namespace}'")
        self.existing_id = existing_id
        self.title = title
        self.namespace = namespace

    def body(self) -> dict:
        """The 409 body of contract 3.4."""
        return {"code": "CONFLICT", "error": str(self), "existing_id": self.existing_id}


class DefectConfigError(RefPeerError):
    """AI_MEMORY_REF_DEFECTS names something that is not a seeded defect."""
