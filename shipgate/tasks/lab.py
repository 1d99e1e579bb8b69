"""`invoke lab.*`: build, inspect and remove the lab (network namespaces standing in for droplets).

Exit codes: 0 done / healthy; 1 `lab.status` found the lab down or unhealthy; 2 the task could not do
its job (not root, a tool missing, a build that failed, a teardown that left something behind).
"""

from __future__ import annotations

import time

from invoke import Collection, task
from invoke.exceptions import Exit

from shipgate.providers.lab import LabError, LabNameError
from shipgate.providers.lab import down as lab_down
from shipgate.providers.lab import status as lab_status
from shipgate.providers.lab import up as lab_up
from shipgate.run.console import Console
from shipgate.target.releases import ReleaseError, target_argument

NAME_HELP = "name of the lab (prefix of its namespaces and links; 1-8 lowercase letters/digits), default sg"


def _defects(value: str | None) -> list[str]:
    return [d.strip() for d in (value or "").split(",") if d.strip()]


@task(help={
    "name": NAME_HELP,
    "target": "ai-memory@X.Y.Z (a crates.io release from the release cache, built when missing) or the path of "
              "an ai-memory binary (default: the bundled reference peer)",
    "defects": "comma list of seeded reference-peer defects to switch on (AI_MEMORY_REF_DEFECTS on every host)",
})
def up(c, name="sg", target=None, defects=None):
    """Build the lab: node-a/b/c, chaos and pg as network namespaces with their own sshd (harmless if up)."""
    started = time.monotonic()
    try:
        path = target_argument(target, progress=Console())[0] if target else None
        inv = lab_up(name, target=path, defects=_defects(defects))
    except (LabError, LabNameError, ReleaseError) as exc:
        raise Exit(f"lab.up: {exc}", code=2) from None
    print(f"lab {name} up in {time.monotonic() - started:.2f}s (campaign {inv.campaign_id})")
    print(f"  {'host':8} {'hostname':16} {'public (ssh)':16} {'private (vpc)':16}")
    for h in inv.hosts.values():
        print(f"  {h.name:8} {h.hostname:16} {h.public_address:16} {h.private_address:16}")
    print(f"  {'pg':8} {'':16} {'':16} {inv.postgres.host:16} {inv.postgres.redacted_dsn()}")
    version = inv.target.version or "UNKNOWN (version read failed; see `invoke lab.status`)"
    print(f"  target: {inv.target.kind} {inv.target.path} -> {version}"
          + (f" defects={','.join(inv.target.defects)}" if inv.target.defects else ""))
    print(f"  ssh: ssh -i {inv.ssh.key_path} -o UserKnownHostsFile={inv.ssh.known_hosts} "
          f"root@{inv.hosts['node-a'].public_address}")


@task(help={"name": NAME_HELP})
def down(c, name="sg"):
    """Remove every namespace, link, rule, process and file of the lab (works without a state file)."""
    try:
        report = lab_down(name)
    except (LabError, LabNameError) as exc:
        raise Exit(f"lab.down: {exc}", code=2) from None
    what = (f"{len(report.namespaces)} namespaces, {len(report.links)} links, "
            f"{len(report.killed_pids)} processes, {len(report.iptables_rules)} root iptables rules"
            + (f", {report.removed_dir}" if report.removed_dir else ""))
    print(f"lab {name} down in {report.duration_s:.2f}s: removed {what}")
    if not report.clean:
        raise Exit("lab.down: left behind: " + "; ".join(report.leftovers), code=2)


@task(help={"name": NAME_HELP})
def status(c, name="sg"):
    """Show which lab hosts are up and healthy (SSH, hostname, sshd, serve health, Postgres)."""
    try:
        st = lab_status(name)
    except (LabError, LabNameError) as exc:
        raise Exit(f"lab.status: {exc}", code=2) from None
    if not st.state_file:
        present = [h.name for h in st.hosts if h.netns]
        extra = f" (but namespaces of {', '.join(present)} exist: run `invoke lab.down --name {name}`)" \
            if present else ""
        raise Exit(f"lab {name} is not up{extra}", code=1)
    print(f"lab {name}: target {st.target_version or 'version unknown'}")
    print(f"  {'host':8} {'ssh':5} {'hostname':16} {'sshd pid':9} {'public':14} {'private':14} serve")
    for h in st.hosts:
        serve = "-" if not h.serve_pids else f"pids {','.join(map(str, h.serve_pids))}: {h.serve_health}"
        ssh = "ok" if h.ssh_ok else "FAIL"
        print(f"  {h.name:8} {ssh:5} {h.hostname or '?':16} {h.sshd_pid or '-'!s:9} "
              f"{h.public_address or '':14} {h.private_address or '':14} {serve}")
        if h.error:
            print(f"           {h.error}")
    print(f"  postgres: {'ready (pgvector installed)' if st.postgres_ready else 'NOT READY: ' + str(st.postgres_error)}")
    if not st.healthy:
        raise Exit(f"lab {name} is not healthy", code=1)
    print(f"lab {name} is healthy")


ns = Collection("lab", up, down, status)
