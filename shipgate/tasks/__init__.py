"""Invoke task collections, one module per area; tasks.py only assembles them."""

from invoke.exceptions import Exit


def not_built(what: str, issue: int) -> None:
    """A planned task that does not exist yet must say so and fail, never succeed silently."""
    raise Exit(f"{what} is not built yet (issue #{issue}); nothing was done.", code=2)
