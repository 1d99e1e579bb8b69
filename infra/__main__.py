"""Pulumi entry point (`main: infra/` in Pulumi.yaml): read and validate config, declare, export.

Pulumi runs this file by path with only infra/ on sys.path; the repository root is added so the
program imports `infra.*` and `shipgate.*` as the tests do, whether or not the project is installed.
"""

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

import pulumi  # noqa: E402

from infra.config import StackConfigError, load_stack_config  # noqa: E402
from infra.resources import build, stack_outputs  # noqa: E402
from shipgate.providers.digitalocean.stack import CONFIG_NAMESPACE  # noqa: E402

try:
    _config = load_stack_config(pulumi.Config(CONFIG_NAMESPACE).get)
except StackConfigError as err:
    raise pulumi.RunError(str(err)) from None

for _name, _value in stack_outputs(build(_config)).items():
    pulumi.export(_name, _value)
