"""The one parser of the JSON that commands on a host print: a `--json` program's one document, the host
agent's one JSON object and its JSON-lines histories.

Each returns the value and None, or no value and why not, in the words the reports show: the transport
answers, the caller decides what a missing value means (an error check, a ServiceError).
"""

from __future__ import annotations

import json
from typing import Any

from shipgate.hosts.result import CommandResult


def document(res: CommandResult) -> tuple[Any | None, str | None]:
    """The one JSON document a `--json` command prints on stdout (exit 0), or (None, why not)."""
    if res.error:
        return None, f"{res.host}: {res.error}"
    text = res.stdout.strip()
    if res.exit_code != 0:
        return None, f"exit {res.exit_code}: {(res.stderr.strip() or text)[-300:]}"
    if not text:
        return None, "empty stdout"
    try:
        return json.loads(text), None
    except ValueError:
        # Real programs sometimes print pretty JSON; only one document is allowed.
        return None, f"stdout is not one JSON document: {text[:200]!r}"


def agent_object(res: CommandResult, what: str) -> tuple[dict[str, Any] | None, str | None]:
    """The JSON object the host agent prints as its last stdout line, or (None, why not), `what` naming the
    call ("host agent read"). The exit status is not judged: a verb that failed still says why in its object
    (`health` exits 1 with {"ok": false, "error": ...})."""
    if res.error:
        return None, f"{what}: {res.error}"
    try:
        doc = json.loads(res.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None, f"{what} printed no JSON (exit {res.exit_code}): {res.stderr.strip()[-300:]}"
    if not isinstance(doc, dict):
        return None, f"{what} printed {type(doc).__name__}, not an object"
    return doc, None


def agent_events(res: CommandResult) -> tuple[list[dict[str, Any]], list[str]]:
    """The JSON objects of a JSON-lines history (`burst`), and the non-empty lines that are not one."""
    events: list[dict[str, Any]] = []
    bad: list[str] = []
    for line in res.stdout.splitlines():
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except ValueError:
            event = None
        if isinstance(event, dict):
            events.append(event)
        else:
            bad.append(line)
    return events, bad
