"""The target's life cycle: which ai-memory is under test, where it comes from, and what it can do."""
