"""The lab: the DigitalOcean topology (node-a, node-b, node-c, chaos, pg) on one Linux machine.

    inv = up("sg")            # -> Inventory, the same model the DigitalOcean provider produces
    status("sg")              # -> LabStatus (per host: SSH, hostname, sshd, serve health; Postgres)
    load("sg")                # -> Inventory of the running lab, or None
    down("sg")                # -> Teardown (idempotent; finds leftovers by name without a state file)
"""

from shipgate.lab.build import up
from shipgate.lab.layout import LabLayout, LabNameError
from shipgate.lab.models import HostStatus, LabStatus, Teardown
from shipgate.lab.status import load, status
from shipgate.lab.system import LabError
from shipgate.lab.teardown import down

__all__ = ["HostStatus", "LabError", "LabLayout", "LabNameError", "LabStatus", "Teardown", "down", "load",
           "status", "up"]
