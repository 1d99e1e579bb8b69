"""The janitor: find, and on request delete, what a campaign left on DigitalOcean.

For when `pulumi destroy` failed or never ran (a cancelled CI job, a lost stack). It talks to the
DigitalOcean API over plain HTTPS (httpx), with a token from the environment that it never prints.
Resources are matched exactly: droplets and databases by the campaign tag (and the tag is checked
on each object, not only trusted from the filter), the VPC, firewall and registered SSH key by the
campaign's resource name, which DigitalOcean cannot tag. The VPC goes last, once nothing is left in it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote

import httpx
from pydantic import SecretStr

from shipgate.providers.digitalocean.stack import campaign_tag, resource_name

DEFAULT_API_URL = "https://api.digitalocean.com"
TOKEN_ENV_VARS: tuple[str, ...] = ("DIGITALOCEAN_TOKEN", "DIGITALOCEAN_ACCESS_TOKEN")
PER_PAGE = 200
MAX_PAGES = 500
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})

Kind = Literal["droplet", "database", "firewall", "ssh_key", "vpc", "tag"]
# The order deletions happen in: everything that lives in the VPC first, the VPC and the tag last.
DELETE_ORDER: tuple[Kind, ...] = ("droplet", "database", "firewall", "ssh_key", "vpc", "tag")


class DoApiError(RuntimeError):
    """The API answered with an error (or not at all) after the bounded retries."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def token_from_env(environ: dict[str, str]) -> SecretStr:
    """The API token from DIGITALOCEAN_TOKEN (or DIGITALOCEAN_ACCESS_TOKEN); its value is never shown."""
    for name in TOKEN_ENV_VARS:
        value = environ.get(name, "").strip()
        if value:
            return SecretStr(value)
    raise DoApiError(f"no DigitalOcean API token: set {TOKEN_ENV_VARS[0]} in the environment")


class DoClient:
    """A small DigitalOcean API v2 client: pagination, bounded retries on 429/5xx, timeouts everywhere."""

    def __init__(
        self,
        token: SecretStr,
        *,
        base_url: str = DEFAULT_API_URL,
        timeout_s: float = 30.0,
        max_retries: int = 5,
        backoff_s: float = 1.0,
        max_backoff_s: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._token = token
        self.base_url = base_url.rstrip("/")
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self._sleep = sleep
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=httpx.Timeout(timeout_s),
            headers={"Accept": "application/json", "User-Agent": "ai-memory-ship-gate-janitor"},
            follow_redirects=False,
            trust_env=False,
        )

    def __repr__(self) -> str:
        return f"DoClient(base_url={self.base_url!r}, token=***)"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> DoClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _wait_for(self, attempt: int, response: httpx.Response | None) -> float:
        if response is not None:
            retry_after = response.headers.get("Retry-After")
            if retry_after is not None:
                try:
                    return min(max(float(retry_after), 0.0), self.max_backoff_s)
                except ValueError:
                    pass
        return min(self.backoff_s * 2**attempt, self.max_backoff_s)

    def request(self, method: str, url: str, *, params: dict[str, Any] | None = None) -> httpx.Response:
        """One API call; 429, 5xx and transport errors are retried at most `max_retries` times."""
        auth = {"Authorization": f"Bearer {self._token.get_secret_value()}"}
        path = httpx.URL(url).path if url.startswith("http") else url
        last = "no attempt made"
        for attempt in range(self.max_retries + 1):
            response: httpx.Response | None = None
            try:
                response = self._http.request(method, url, params=params, headers=auth)
            except httpx.TransportError as err:
                last = f"{type(err).__name__}: {err}"
            else:
                if response.status_code not in RETRY_STATUSES:
                    return response
                last = f"HTTP {response.status_code}"
            if attempt < self.max_retries:
                self._sleep(self._wait_for(attempt, response))
        raise DoApiError(f"{method} {path}: still failing after {self.max_retries + 1} attempts ({last})")

    def _check(self, method: str, path: str, response: httpx.Response) -> None:
        if response.status_code >= 400:
            try:
                message = response.json().get("message", "")
            except ValueError:
                message = response.text[:200]
            raise DoApiError(f"{method} {path}: HTTP {response.status_code} {message}".rstrip(), response.status_code)

    def get(self, path: str, params: dict[str, Any] | None = None) -> dict[str, Any] | None:
        """GET one object; None when it does not exist (404)."""
        response = self.request("GET", path, params=params)
        if response.status_code == 404:
            return None
        self._check("GET", path, response)
        return response.json()

    def list_all(self, path: str, key: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Every item of a paginated collection, following `links.pages.next`."""
        items: list[dict[str, Any]] = []
        for page in self._pages(path, params):
            items.extend(page.get(key) or [])
        return items

    def _pages(self, path: str, params: dict[str, Any] | None) -> Iterator[dict[str, Any]]:
        url: str | None = path
        query: dict[str, Any] | None = {"per_page": PER_PAGE, **(params or {})}
        seen: set[str] = set()
        for _ in range(MAX_PAGES):
            if url is None:
                return
            response = self.request("GET", url, params=query)
            self._check("GET", path, response)
            body = response.json()
            yield body
            nxt = ((body.get("links") or {}).get("pages") or {}).get("next")
            if not nxt or nxt in seen:
                return
            if not nxt.startswith(self.base_url + "/") and nxt.startswith("http"):
                nxt = self.base_url + httpx.URL(nxt).raw_path.decode()
            seen.add(nxt)
            url, query = nxt, None
        raise DoApiError(f"GET {path}: more than {MAX_PAGES} pages; refusing to go on")

    def delete(self, path: str) -> bool:
        """DELETE; True if deleted now, False if it was already gone (404)."""
        response = self.request("DELETE", path)
        if response.status_code == 404:
            return False
        self._check("DELETE", path, response)
        return True


@dataclass(frozen=True)
class Leftover:
    """One resource that belongs to the campaign."""

    kind: Kind
    id: str
    name: str
    why: str

    @property
    def path(self) -> str:
        base = {
            "droplet": "/v2/droplets/",
            "database": "/v2/databases/",
            "firewall": "/v2/firewalls/",
            "ssh_key": "/v2/account/keys/",
            "vpc": "/v2/vpcs/",
            "tag": "/v2/tags/",
        }[self.kind]
        return base + quote(self.id, safe="")


@dataclass
class Outcome:
    """What a janitor run found and did."""

    campaign_id: str
    found: list[Leftover] = field(default_factory=list)
    deleted: list[Leftover] = field(default_factory=list)
    already_gone: list[Leftover] = field(default_factory=list)
    failed: list[tuple[Leftover, str]] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.failed


def find_leftovers(client: DoClient, campaign_id: str) -> list[Leftover]:
    """Everything tagged or named for `campaign_id`, in deletion order."""
    tag = campaign_tag(campaign_id)
    name = resource_name(campaign_id)
    found: list[Leftover] = []
    for d in client.list_all("/v2/droplets", "droplets", {"tag_name": tag}):
        if tag in (d.get("tags") or []):
            found.append(Leftover("droplet", str(d["id"]), str(d.get("name", "")), f"tag {tag}"))
    for db in client.list_all("/v2/databases", "databases", {"tag_name": tag}):
        if tag in (db.get("tags") or []):
            found.append(Leftover("database", str(db["id"]), str(db.get("name", "")), f"tag {tag}"))
    for fw in client.list_all("/v2/firewalls", "firewalls"):
        if fw.get("name") == name or tag in (fw.get("tags") or []):
            why = f"name {name}" if fw.get("name") == name else f"targets tag {tag}"
            found.append(Leftover("firewall", str(fw["id"]), str(fw.get("name", "")), why))
    for key in client.list_all("/v2/account/keys", "ssh_keys"):
        if key.get("name") == name:
            found.append(Leftover("ssh_key", str(key["id"]), name, f"name {name}"))
    for vpc in client.list_all("/v2/vpcs", "vpcs"):
        if vpc.get("name") == name and not vpc.get("default", False):
            found.append(Leftover("vpc", str(vpc["id"]), name, f"name {name}"))
    if client.get(f"/v2/tags/{quote(tag, safe='')}") is not None:
        found.append(Leftover("tag", tag, tag, "the campaign's tag"))
    return sorted(found, key=lambda x: DELETE_ORDER.index(x.kind))


def _vpc_members(client: DoClient, vpc_id: str) -> list[dict[str, Any]]:
    return client.list_all(f"/v2/vpcs/{quote(vpc_id, safe='')}/members", "members")


def delete_leftovers(
    client: DoClient,
    campaign_id: str,
    leftovers: list[Leftover],
    *,
    vpc_wait_s: float = 900.0,
    poll_s: float = 10.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    log: Callable[[str], None] = print,
) -> Outcome:
    """Delete in `DELETE_ORDER`; a VPC is deleted only once it has no members (polled up to `vpc_wait_s`)."""
    out = Outcome(campaign_id, found=list(leftovers))
    for item in sorted(leftovers, key=lambda x: DELETE_ORDER.index(x.kind)):
        try:
            blocking = [f"{x.kind} {x.name}" for x, _ in out.failed if x.kind in ("droplet", "database")]
            if item.kind == "vpc" and blocking:
                raise DoApiError(f"not deleted: it still holds {', '.join(blocking)}, whose deletion failed")
            if item.kind == "vpc":
                deadline = clock() + vpc_wait_s
                members = _vpc_members(client, item.id)
                while members and clock() < deadline:
                    log(f"  waiting for {len(members)} member(s) to leave VPC {item.name}")
                    sleep(poll_s)
                    members = _vpc_members(client, item.id)
                if members:
                    names = ", ".join(sorted(str(m.get("name", m.get("urn", "?"))) for m in members))
                    raise DoApiError(f"VPC still has members after {vpc_wait_s:g} s: {names}")
            if client.delete(item.path):
                out.deleted.append(item)
                log(f"  deleted {item.kind} {item.name} ({item.id})")
            else:
                out.already_gone.append(item)
                log(f"  {item.kind} {item.name} ({item.id}) was already gone")
        except DoApiError as err:
            out.failed.append((item, str(err)))
            log(f"  FAILED to delete {item.kind} {item.name} ({item.id}): {err}")
    return out


def describe(leftovers: list[Leftover]) -> str:
    """A plain table of what was found."""
    if not leftovers:
        return "  (nothing)"
    width = max(len(x.kind) for x in leftovers)
    return "\n".join(f"  {x.kind:<{width}}  {x.id:<38}  {x.name:<40}  ({x.why})" for x in leftovers)
