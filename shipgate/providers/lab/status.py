"""`status` and `load`: what of a lab is up, reached the way the gate reaches it (SSH, the VPC)."""

from __future__ import annotations

import shlex
import sys

from shipgate.hosts.inventory import Host, Inventory
from shipgate.providers.lab import layout as L
from shipgate.providers.lab.build import _init_pid, inventory_from_state, read_state, state_is_running
from shipgate.providers.lab.models import HostStatus, LabStatus
from shipgate.providers.lab.system import existing_netns

_PG_PROBE = (
    "import sys, psycopg\n"
    "with psycopg.connect(sys.stdin.read().strip(), connect_timeout=3) as c:\n"
    "    v = c.execute(\"SELECT extversion FROM pg_extension WHERE extname = 'vector'\").fetchone()\n"
    "    print('vector', v[0] if v else 'missing')\n"
)


def load(name: str = "sg") -> Inventory | None:
    """The inventory of the running lab `name`, or None when it is not (fully) running."""
    layout = L.LabLayout(L.check_name(name))
    state = read_state(layout)
    if state is None or not state_is_running(L.LabLayout(name, state.slot), state):
        return None
    return inventory_from_state(state)


def _with_pg(inv: Inventory, layout: L.LabLayout) -> Inventory:
    """The inventory plus the pg host, so status can SSH to it like to the others."""
    h = layout.host("pg")
    hosts = dict(inv.hosts)
    hosts["pg"] = Host(name="pg", hostname=h.hostname, public_address=h.public_address,
                       private_address=h.private_address)
    return inv.model_copy(update={"hosts": hosts})


def status(name: str = "sg") -> LabStatus:
    """Per host: namespace, sshd PID, SSH reachable, hostname, `ai-memory serve` and its health;
    Postgres: a real login from node-a over the VPC with pgvector installed."""
    # why: paramiko loads only when SSH is used (fast `invoke --list`)
    from shipgate.hosts.ssh import HostAccess

    layout = L.LabLayout(L.check_name(name))
    state = read_state(layout)
    present = existing_netns()
    if state is None:
        return LabStatus(name=name, state_file=False,
                         hosts=[HostStatus(name=r, netns=layout.host(r).netns in present) for r in L.ROLES])
    layout = L.LabLayout(name, state.slot)
    inv = _with_pg(inventory_from_state(state), layout)
    out = LabStatus(name=name, state_file=True, target_version=inv.target.version)
    probe = "hostname; echo serve:$(pgrep -d, -f '[a]i-memory serve')"
    with HostAccess(inv) as access:
        # Hosts whose namespace is gone are not dialled (that would only wait for the connect timeout).
        results = access.run_many([r for r in L.ROLES if layout.host(r).netns in present], probe, timeout=10)
        for role in L.ROLES:
            h = layout.host(role)
            res = results.get(role)
            hs = HostStatus(name=role, netns=h.netns in present, public_address=h.public_address,
                            private_address=h.private_address,
                            sshd_pid=_init_pid(state.host_pids.get(role, -1)), ssh_ok=res is not None and res.ok,
                            error="network namespace missing" if res is None else None if res.ok else res.describe())
            if res is not None and res.ok:
                lines = res.stdout.splitlines()
                hs.hostname = lines[0].strip() if lines else None
                serve = next((ln.split(":", 1)[1] for ln in lines if ln.startswith("serve:")), "")
                hs.serve_pids = [int(p) for p in serve.split(",") if p.strip().isdigit()]
                if hs.serve_pids:
                    health = access.run(role, f"curl -s -m 3 http://{h.private_address}:"
                                              f"{inv.federation_port}/api/v1/health", timeout=10)
                    hs.serve_health = health.stdout.strip()[:300] if health.ok else f"unhealthy: {health.describe()}"
            out.hosts.append(hs)
        if not next(h.ssh_ok for h in out.hosts if h.name == "node-a"):
            out.postgres_error = "not checked: node-a (where the probe runs) is unreachable"
            return out
        pg = access.run("node-a", f"{sys.executable} -c {shlex.quote(_PG_PROBE)}", timeout=15,
                        stdin=inv.postgres.dsn().get_secret_value())
    out.postgres_ready = pg.ok and "vector " in pg.stdout and "missing" not in pg.stdout
    if not out.postgres_ready:
        out.postgres_error = pg.describe()
    return out
