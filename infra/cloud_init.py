"""The droplets' user data: packages the phases need, a pre-generated SSH host key, a dead-man switch.

The host key comes from the Pulumi program (a `tls.PrivateKey`, kept encrypted in the stack state), so
the operator's known_hosts is known before the droplet boots and strict host-key checking never has to
trust a first connection. The dead-man switch powers the droplet off after N hours even if nobody
tears the campaign down: a `shutdown -P +M` armed once at first boot, and a systemd timer that checks
an absolute deadline fixed at first boot, so a reboot does not extend it.
"""

from __future__ import annotations

import yaml

from shipgate.providers.digitalocean.stack import READY_MARKER

PACKAGES: tuple[str, ...] = (
    "python3",
    "iptables",
    "libfaketime",
    "faketime",
    "curl",
    "jq",
    "postgresql-client",
)
DEADLINE_FILE = "/var/lib/shipgate/deadman-deadline"
DEADMAN_SCRIPT = "/usr/local/sbin/shipgate-deadman"
DEADMAN_UNIT = "shipgate-deadman"

_DEADMAN_SH = f"""#!/bin/sh
# Power this droplet off once the deadline fixed at its first boot has passed (the ship-gate dead-man switch).
set -eu
deadline=$(cat {DEADLINE_FILE})
if [ "$(date +%s)" -ge "$deadline" ]; then
  logger -t {DEADMAN_UNIT} "dead-man deadline $deadline passed: powering off"
  systemctl poweroff
fi
"""

_SERVICE = f"""[Unit]
Description=ship-gate dead-man switch: power off after the campaign deadline

[Service]
Type=oneshot
ExecStart={DEADMAN_SCRIPT}
"""

_TIMER = """[Unit]
Description=check the ship-gate dead-man deadline every five minutes

[Timer]
OnBootSec=1min
OnUnitActiveSec=5min
AccuracySec=30s

[Install]
WantedBy=timers.target
"""


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (scripts, units, keys) as literal blocks, readable in the droplet console."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def render_user_data(
    *,
    hostname: str,
    dead_man_minutes: int,
    host_key_private: str,
    host_key_public: str,
    packages: tuple[str, ...] = PACKAGES,
) -> str:
    """A `#cloud-config` document for one droplet (it contains the host's private key: treat as secret)."""
    if dead_man_minutes < 1:
        raise ValueError("the dead-man switch needs at least one minute")
    seconds = dead_man_minutes * 60
    arm = (
        f"test -s {DEADLINE_FILE} || {{ mkdir -p /var/lib/shipgate && "
        f"echo $(( $(date +%s) + {seconds} )) > {DEADLINE_FILE}; }}"
    )
    doc = {
        "hostname": hostname,
        "preserve_hostname": False,
        "ssh_pwauth": False,
        "ssh_deletekeys": True,
        "ssh_genkeytypes": [],
        "ssh_keys": {
            "ed25519_private": host_key_private.strip() + "\n",
            "ed25519_public": host_key_public.strip(),
        },
        "bootcmd": [
            ["sh", "-c", arm],
            ["cloud-init-per", "once", "shipgate-deadman-shutdown", "shutdown", "-P", f"+{dead_man_minutes}"],
        ],
        "package_update": True,
        "packages": list(packages),
        "write_files": [
            {"path": DEADMAN_SCRIPT, "permissions": "0755", "owner": "root:root", "content": _DEADMAN_SH},
            {"path": f"/etc/systemd/system/{DEADMAN_UNIT}.service", "permissions": "0644", "content": _SERVICE},
            {"path": f"/etc/systemd/system/{DEADMAN_UNIT}.timer", "permissions": "0644", "content": _TIMER},
        ],
        "runcmd": [
            ["systemctl", "daemon-reload"],
            ["systemctl", "enable", "--now", f"{DEADMAN_UNIT}.timer"],
            ["sh", "-c", f"mkdir -p /var/lib/shipgate && date -u +%FT%TZ > {READY_MARKER}"],
        ],
    }
    return "#cloud-config\n" + yaml.dump(doc, Dumper=_Dumper, sort_keys=False, width=1000)
