"""Gate settings: defaults, an optional TOML file, then command-line flags (each overriding the last).

Every phase records the settings it ran with, so a verdict can always be traced to its thresholds.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from shipgate.evidence.phase_ids import PHASE_NUMBERS, comma_list
from shipgate.evidence.problems import field_errors
from shipgate.nemesis import faults

FAULT_CLASSES: tuple[str, ...] = faults.DEFAULT_FAULTS  # the default campaign and the release shape
KNOWN_FAULTS: tuple[str, ...] = faults.NAMES  # every class --fault accepts
DEFAULT_AGENTS = ["ai:agent-alice", "ai:agent-bob", "ai:agent-charlie", "ai:agent-dana"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _whole_seconds(v: float | None) -> float | None:
    """The product's `--catchup-interval-secs` is an integer (clap refuses 0.5): say so at load, not at start."""
    if v is not None and not float(v).is_integer():
        raise ValueError(f"catch-up intervals are whole seconds (ai-memory's flag is an integer), not {v}")
    return v


class Phase1Settings(_Strict):
    tool_count_min: int = Field(30, ge=0, description="MCP tools/list must advertise at least this many")
    mcp_profile: str = Field("full", description="AI_MEMORY_PROFILE the gate asks for ('' asks for none)")
    serve_port: int = 9077
    health_deadline_s: float = 30.0
    recall_deadline_s: float = Field(
        20.0, gt=0, description="a CLI recall of a one-row database must answer within this; longer is a hang")


class WorkloadSettings(_Strict):
    """Phase 2's mixed replication workload after the burst (issue 17): every write path, through every node."""

    enabled: bool = Field(True, description="run the workload (False: burst and probes only)")
    updates: int = Field(6, ge=0, description="PUTs changing content and tags")
    title_updates: int = Field(
        2, ge=0, description="PUTs that also change the title; real 0.6.3 never replicates them (a product "
                             "defect, refpeer's update_title_not_replicated), so 0 leaves that finding out")
    promotes: int = Field(6, ge=0)
    deletes: int = Field(6, ge=0)
    links: int = Field(6, ge=0)
    consolidates: int = Field(1, ge=0, description="POST /api/v1/consolidate of two seed rows of one writer into a "
                                                    "new row (0.6.0-0.6.1 keep it local: CHANGELOG v0.6.2 #326)")
    duplicates: int = Field(1, ge=0, description="re-POSTs of an existing (title, namespace), judged by the "
                                                  "release's documented rule (0.6.3: upsert; 0.6.4+: 409)")
    stores_per_node: int = Field(4, ge=0, description="plain stores through each node beyond the rows the "
                                                       "other kinds need")
    bulk_rows: int = Field(300, ge=0, le=1000, description="rows of the bulk import fanned out with every node up")
    catchup_bulk_rows: int = Field(
        1000, ge=0, le=1000, description="rows of a bulk import while node-c is down, then repaired by catch-up. "
                                         "Two peers each serve one 500-row page of a tie, in orders that differ "
                                         "by chance: 600 rows were sometimes covered by the two pages on 0.6.3, "
                                         "with 1000 (the bulk maximum) they overlap and 430 were lost")
    deadline_s: float = Field(
        20.0, gt=0, description="how long a fan-out stage polls for convergence: with catch-up off every fan-out "
                                "has ended 2 x quorum timeout + 250 ms after the last answer, so later is never")
    namespace: str = "ship-gate-phase2-mix"


class Phase2Settings(_Strict):
    quorum_writes: int = Field(2, ge=1)
    quorum_timeout_ms: int = Field(3000, ge=100)
    agents: list[str] = Field(default_factory=lambda: list(DEFAULT_AGENTS))
    writes_per_agent: int = Field(50, ge=1)
    convergence_deadline_s: float = Field(90.0, gt=0)
    min_node_fraction: float = Field(0.95, ge=0, le=1, description="seed criterion: each node >= this x ok")
    probe_margin_s: float = Field(2.0, ge=0, description="a 503 must come within quorum timeout + this")
    quorum_probes: int = Field(
        3, ge=1, le=50, description="writes per quorum-miss probe kind (both peers refused; both peers silent): "
                                    "their latencies are the distribution in the report")
    silent_fault: Literal["partition", "pause"] = Field(
        "partition", description="how the silent probe silences node-b and node-c: iptables DROP on node-a both "
                                 "ways (partition) or SIGSTOP of their serve (pause)")
    burst_catchup_interval_secs: float | None = Field(
        0, description="serve's catch-up interval during the burst; 0 disables it so the write path (fan-out) "
                       "alone is measured; None passes no flag (targets older than v0.6.1)")
    repair_catchup_interval_secs: float | None = Field(
        1, description="catch-up interval when node-b and node-c restart after the probes")
    retry_probe: bool = Field(
        True, description="refuse node-a's first fan-out packet of one row to node-b (a TCP reset) while catch-up "
                          "is off: the row reaches node-b only if the release retries a failed fan-out (v0.6.2)")
    namespace: str = "ship-gate-phase2"
    workload: WorkloadSettings = Field(default_factory=WorkloadSettings)

    _intervals = field_validator("burst_catchup_interval_secs", "repair_catchup_interval_secs")(_whole_seconds)


class Phase3Settings(_Strict):
    rows: int = Field(3000, ge=2, description="seeded rows: well above every page, batch and cap on the path (list "
                                               "pages of 20, list caps of 200 and 1000, 500-row pages and bulk "
                                               "chunks; real 0.6.3's Postgres list silently stops at 1000); the "
                                               "base namespace gets over half of them")
    links: int = Field(1500, ge=0, description="seeded links between rows (0.6.x's migrate copied none); at most "
                                               "what rows // 8 anchor rows can hold")
    seed: int | None = Field(None, description="seed of the rows' shape and contents; drawn and recorded when absent")
    seed_method: Literal["bulk", "cli"] = Field(
        "bulk", description="bulk: POST /api/v1/memories/bulk (+ single writes and links) to a serve on node-a; "
                            "cli: one `store` / `link` process per row and link (no metadata)")
    batch: int = 500
    namespace: str = "phase3"
    seed_timeout_s: float = Field(600.0, gt=0, description="deadline of the whole seeding")
    migrate_timeout_s: float = Field(300.0, gt=0, description="deadline of one migrate leg")

    @model_validator(mode="after")
    def _room_for_links(self) -> Phase3Settings:
        anchors = len(range(0, self.rows, 8))
        room = anchors * (anchors - 1) * 4
        if self.links > room:
            raise ValueError(f"{self.links} links need more rows: {self.rows} rows give {anchors} anchor rows, "
                             f"room for {room} links: lower phase3.links or raise phase3.rows")
        return self


class Phase4Settings(_Strict):
    faults: list[str] = Field(default_factory=lambda: list(FAULT_CLASSES))
    cycles: int = Field(50, ge=1)
    writes: int = Field(100, ge=1)
    seed: int | None = Field(None, description="seed of the fault moments; drawn and recorded when absent")
    skew_offset: str = Field("+300s", description="libfaketime offset of node-c for clock_skew_peer")
    min_bound: float = Field(0.995, ge=0, le=1)
    max_lost: int = Field(0, ge=0)
    topology: Literal["hosts", "local"] = "hosts"
    quorum_timeout_ms: int = 2000
    catchup_interval_secs: float = Field(1.0, ge=0, description="serve's catch-up interval where repair is needed")
    _interval = field_validator("catchup_interval_secs")(_whole_seconds)
    fanout_faults: list[str] = Field(
        default_factory=lambda: [f.name for f in faults.FAULTS if not f.needs_catchup],
        description="classes run with catch-up off (interval 0), so convergence measures the fan-out itself, "
                    "as in phase 2's burst: a background repair would hide a cancelled fan-out")
    convergence_deadline_s: float = 30.0
    burst_s: float = Field(1.2, gt=0, description="paced length of a cycle's burst (rate = writes / burst_s)")
    concurrency: int = Field(4, ge=1, description="concurrent writers of a burst (reduced to divide writes)")
    fault_window_ms: int = Field(500, ge=1, description="how long a partition or a pause lasts before healing")
    class_budget_s: float | None = Field(
        None, gt=0, description="time budget of one fault class; None: 60 s + 6 s per cycle. Over it: timed_out")

    @field_validator("faults")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        bad = [f for f in v if f not in KNOWN_FAULTS]
        if bad:
            raise ValueError(f"unknown fault class {', '.join(bad)} (known: {', '.join(KNOWN_FAULTS)})")
        if not v:
            raise ValueError("no fault class selected")
        return v

    @field_validator("fanout_faults")
    @classmethod
    def _known_fanout(cls, v: list[str]) -> list[str]:
        bad = [f for f in v if f not in KNOWN_FAULTS]
        if bad:
            raise ValueError(f"unknown fault class {', '.join(bad)} in fanout_faults (known: {', '.join(KNOWN_FAULTS)})")
        return v


class GateSettings(_Strict):
    phases: list[int] = Field(default_factory=lambda: list(PHASE_NUMBERS))
    phase1: Phase1Settings = Field(default_factory=Phase1Settings)
    phase2: Phase2Settings = Field(default_factory=Phase2Settings)
    phase3: Phase3Settings = Field(default_factory=Phase3Settings)
    phase4: Phase4Settings = Field(default_factory=Phase4Settings)

    @field_validator("phases")
    @classmethod
    def _phases(cls, v: list[int]) -> list[int]:
        bad = [p for p in v if p not in PHASE_NUMBERS]
        if bad or not v:
            raise ValueError(f"phases must be a non-empty subset of {comma_list()} (got {v})")
        return sorted(set(v))


class SettingsError(ValueError):
    """Bad configuration: the message names the file or flag and the problem."""


def parse_phases(text: str) -> list[int]:
    try:
        return [int(p) for p in text.replace(" ", "").split(",") if p]
    except ValueError:
        raise SettingsError(f"--phases takes a comma list of {comma_list()} (got {text!r})") from None


def parse_faults(text: str) -> list[str]:
    """'a,b' (or repeated flags, joined with commas) -> ['a', 'b']; unknown and empty names are refused."""
    names = [f.strip() for f in text.split(",")]
    if not any(names):
        raise SettingsError(f"--fault takes a fault class or a comma list of them (known: {', '.join(KNOWN_FAULTS)})")
    bad = [f for f in names if f not in KNOWN_FAULTS]
    if bad:
        raise SettingsError(f"unknown fault class {', '.join(bad)} "
                            f"(known: {', '.join(KNOWN_FAULTS)})")
    return list(dict.fromkeys(names))


PHASE4_FLAGS: tuple[str, ...] = ("fault", "cycles", "writes", "seed", "soak", "skew", "topology")
SOAK_SHAPE: dict[str, int] = {"cycles": 200, "writes": 100}


def flag_overrides(*, phases: str | None = None, fault: str | None = None, cycles: int | None = None,
                   writes: int | None = None, seed: int | None = None, soak: bool = False, skew: str | None = None,
                   topology: str | None = None) -> dict:
    """The overrides of the flags the user actually gave (None / False: not given), for `load_settings`.

    `--soak` is the 200 x 100 shape; an explicit `--cycles` or `--writes` beside it wins, and is checked like
    any other (`--soak --cycles 0` is refused exactly as `--cycles 0` is). Phase-4 flags without phase 4
    among the phases given on the command line are a mistake, not silently ignored.
    """
    out: dict = {}
    if phases is not None:
        out["phases"] = parse_phases(phases)
    p4: dict = dict(SOAK_SHAPE) if soak else {}
    if fault is not None:
        p4["faults"] = parse_faults(fault)
    for key, value in (("cycles", cycles), ("writes", writes), ("seed", seed), ("skew_offset", skew),
                       ("topology", topology)):
        if value is not None:
            p4[key] = value
    if p4:
        out["phase4"] = p4
        if "phases" in out and 4 not in out["phases"]:
            given = [f"--{f}" for f, v in (("fault", fault), ("cycles", cycles), ("writes", writes), ("seed", seed),
                                           ("soak", soak or None), ("skew", skew), ("topology", topology))
                     if v is not None]
            raise SettingsError(f"{', '.join(given)}: phase-4 setting(s), but --phases {phases} does not run phase 4")
    return out


def release_shape_gaps(settings: GateSettings) -> list[str]:
    """Why these settings fall short of the release shape (the gate's defaults); [] when they do not.

    The release shape: all four phases, every release fault class (`FAULT_CLASSES`), cycles x writes at least the default 50 x 100,
    and no pass threshold looser than its default. Only a run of that shape can clear a release.
    """
    gaps: list[str] = []
    missing = [p for p in PHASE_NUMBERS if p not in settings.phases]
    if missing:
        gaps.append(f"phase{'s' if len(missing) > 1 else ''} {', '.join(map(str, missing))} not run")
    p4, ref = settings.phase4, GateSettings()
    if 4 in settings.phases:
        absent = [f for f in FAULT_CLASSES if f not in p4.faults]
        if absent:
            gaps.append(f"fault class{'es' if len(absent) > 1 else ''} {', '.join(absent)} not run")
        if p4.cycles < ref.phase4.cycles or p4.writes < ref.phase4.writes:
            gaps.append(f"{p4.cycles} cycles x {p4.writes} writes is below the release shape "
                        f"{ref.phase4.cycles} x {ref.phase4.writes}")
    looser = [(2, "phase2.agents", len(settings.phase2.agents), len(ref.phase2.agents), min),
              (2, "phase2.writes_per_agent", settings.phase2.writes_per_agent, ref.phase2.writes_per_agent, min),
              (2, "phase2.min_node_fraction", settings.phase2.min_node_fraction, ref.phase2.min_node_fraction, min),
              (3, "phase3.rows", settings.phase3.rows, ref.phase3.rows, min),
              (3, "phase3.links", settings.phase3.links, ref.phase3.links, min),
              (4, "phase4.min_bound", p4.min_bound, ref.phase4.min_bound, min),
              (4, "phase4.max_lost", p4.max_lost, ref.phase4.max_lost, max)]
    for phase, name, value, default, looser_of in looser:
        if phase in settings.phases and looser_of(value, default) != default:
            gaps.append(f"{name} {value} is looser than the release's {default}")
    w, ref_w = settings.phase2.workload, ref.phase2.workload
    if 2 in settings.phases and not settings.phase2.retry_probe:
        gaps.append("phase2.retry_probe is off: a fan-out that fails once is not checked for its retry")
    if 2 in settings.phases and not w.enabled:
        gaps.append("phase2.workload is disabled: only stores are checked for replication")
    elif 2 in settings.phases:
        fewer = [f"{k} {getattr(w, k)} < {getattr(ref_w, k)}" for k in
                 ("updates", "title_updates", "promotes", "deletes", "links", "consolidates", "duplicates",
                  "stores_per_node", "bulk_rows", "catchup_bulk_rows") if getattr(w, k) < getattr(ref_w, k)]
        if fewer:
            gaps.append(f"phase2.workload is smaller than the release's: {', '.join(fewer)}")
    return gaps


def load_settings(config: Path | None = None, overrides: dict | None = None) -> GateSettings:
    """Defaults <- TOML file <- overrides (nested dict, e.g. {"phase4": {"cycles": 5}})."""
    data: dict = {}
    if config is not None:
        if not config.is_file():
            raise SettingsError(f"config file {config} does not exist")
        try:
            data = tomllib.loads(config.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"config file {config} is not valid TOML: {exc}") from None
    for key, value in (overrides or {}).items():
        if isinstance(value, dict):
            data.setdefault(key, {}).update({k: v for k, v in value.items() if v is not None})
        elif value is not None:
            data[key] = value
    given = {(key, *((k,) if isinstance(v, dict) else ())) for key, value in (overrides or {}).items()
             if value is not None for k, v in (value.items() if isinstance(value, dict) else [(None, value)])
             if v is not None}
    try:
        return GateSettings.model_validate(data)
    except ValidationError as exc:
        problems = []
        for loc, msg in field_errors(exc):
            source = "the flags" if loc[:1] in given or loc[:2] in given else (str(config) if config else "the flags")
            problems.append(f"{'.'.join(loc)}: {msg} (from {source})")
        raise SettingsError(f"bad settings: {'; '.join(problems)}") from None
