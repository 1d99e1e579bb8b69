"""A stand-in for the `pulumi` CLI with stacks: select, config, up, output, destroy (issue 14, item 5).

State lives in files beside the executable: `selected` (the current stack), `stacks/<name>.json` (its
outputs; `{}` when not up), `planned/<name>.json` (what `pulumi up` will make the outputs), `calls.jsonl`
(every argv). Messages mimic the real CLI's where the gate reads them ("no stack named ...").
"""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

SCRIPT = r'''#!{python}
import json, os, sys
here = os.path.dirname(os.path.abspath(__file__))
stacks = os.path.join(here, "stacks")
os.makedirs(stacks, exist_ok=True)
with open(os.path.join(here, "calls.jsonl"), "a") as f:
    f.write(json.dumps(sys.argv[1:]) + "\n")
args = [a for a in sys.argv[1:] if a != "--non-interactive"]

def opt(name):
    if name in args:
        i = args.index(name)
        value = args[i + 1]
        del args[i:i + 2]
        return value
    return None

def selected():
    path = os.path.join(here, "selected")
    return open(path).read().strip() if os.path.exists(path) else None

def stack_file(name):
    return os.path.join(stacks, name + ".json")

def need(name):
    if name is None:
        sys.stderr.write("error: no stack selected; please use `pulumi stack select` to choose one\n")
        sys.exit(255)
    if not os.path.exists(stack_file(name)):
        sys.stderr.write(f"error: no stack named '{name}' found\n")
        sys.exit(255)
    return name

stack = opt("--stack")
if args[:2] == ["stack", "select"]:
    create = "--create" in args
    name = [a for a in args[2:] if a != "--create"][0]
    if not os.path.exists(stack_file(name)):
        if not create:
            need(name)
        open(stack_file(name), "w").write("{}")
    open(os.path.join(here, "selected"), "w").write(name)
elif args[:2] == ["stack", "--show-name"]:
    print(need(selected()))
elif args[:2] == ["stack", "output"]:
    print(open(stack_file(need(stack or selected()))).read())
elif args[:2] == ["config", "set"]:
    need(stack or selected())
elif args[:1] == ["up"]:
    name = need(stack or selected())
    planned = os.path.join(here, "planned", name + ".json")
    open(stack_file(name), "w").write(open(planned).read())
elif args[:1] == ["destroy"]:
    open(stack_file(need(stack or selected())), "w").write("{}")
else:
    sys.stderr.write(f"fake pulumi: unsupported {args}\n")
    sys.exit(2)
'''


def install(bindir: Path) -> Path:
    """Write the fake `pulumi` into `bindir`; returns its path."""
    bindir.mkdir(parents=True, exist_ok=True)
    exe = bindir / "pulumi"
    exe.write_text(SCRIPT.replace("{python}", sys.executable))
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    (bindir / "planned").mkdir(exist_ok=True)
    return exe


def plan(bindir: Path, stack: str, outputs: dict) -> None:
    """What `pulumi up` on `stack` will export."""
    (bindir / "planned" / f"{stack}.json").write_text(json.dumps(outputs))


def calls(bindir: Path) -> list[list[str]]:
    path = bindir / "calls.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def path_with(bindir: Path) -> str:
    return f"{bindir}{os.pathsep}{os.environ['PATH']}"
