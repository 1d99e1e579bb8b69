"""The lab: the DigitalOcean topology (node-a, node-b, node-c, chaos, pg) on one Linux machine.

    inv = up("sg")            # -> Inventory, the same model the DigitalOcean provider produces
    status("sg")              # -> LabStatus (per host: SSH, hostname, sshd, serve health; Postgres)
    load("sg")                # -> Inventory of the running lab, or None
    down("sg")                # -> Teardown (idempotent; finds leftovers by name without a state file)

What a lab named N is made of (everything derives from N, see layout.py):
  * hosts: network namespaces `N-node-a` ... `N-pg`, each running its own sshd as PID 1 of its own PID,
    UTS (hostname `N-<role>`), mount and IPC namespaces, with private /run and /dev/shm;
  * networks: bridge `N-pub` ("public": 10.251.S.0/24, the root namespace is 10.251.S.1, the operator)
    and bridge `N-vpc` (the VPC: 10.250.S.0/24, no address in the root namespace); S is a per-lab slot;
  * firewall in each host (iptables, policy DROP): SSH only from the operator, 9077 (and 5432 on pg) only
    from the VPC; no forwarding, no NAT, no default route, no IPv6;
  * files under /tmp/shipgate-lab/N (SHIPGATE_LAB_DIR): the operator key and known_hosts (ssh/), each
    host's HOME with bin/ai-memory and ai-memory.db (hosts/<role>/), sshd files, Postgres data, state.json;
  * Postgres runs on pg as the unprivileged system user `shipgate-pg`, with its data dir and socket in the
    lab's folder and its binaries in a copy of the bundled server that every lab shares, one per Postgres
    build, under /var/cache/shipgate/postgres (see shipgate.providers.lab.postgres): so the clone and its .venv may live
    where that user cannot go, e.g. /root;
  * SSH sessions get HOME, PATH (the host's bin first), AI_MEMORY_DB, AI_MEMORY_NO_CONFIG=1 and, when
    asked, AI_MEMORY_REF_DEFECTS through sshd's SetEnv.
"""

from shipgate.providers.lab.build import check_defects, installed_target_sha256, up
from shipgate.providers.lab.layout import LabLayout, LabNameError
from shipgate.providers.lab.models import HostStatus, LabStatus, Teardown
from shipgate.providers.lab.status import load, status
from shipgate.providers.lab.system import LabError
from shipgate.providers.lab.teardown import down

__all__ = ["HostStatus", "LabError", "LabLayout", "LabNameError", "LabStatus", "Teardown", "check_defects", "down",
           "installed_target_sha256", "load", "status", "up"]
