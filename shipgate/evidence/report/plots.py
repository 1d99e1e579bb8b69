"""The campaign's plots, each drawn from the run's own data (histories and phase reports).

- write latency over time per history group (the phase 2 burst; each chaos class), fault windows shaded;
- time to converge per node (phase 2) and rows held per node against the acknowledged writes;
- a per-cycle outcome strip per chaos class;
- the upstream convergence bound per chaos class against its 0.995 threshold.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from shipgate.evidence.models import CycleRecord, OperationEvent, Phase2Report, Phase4Report
from shipgate.evidence.report.load import RunData
from shipgate.evidence.report.svg import (
    STATUS_COLOURS,
    Band,
    Bar,
    Cell,
    Series,
    StripRow,
    bar_chart,
    scatter_plot,
    strip_chart,
)

BOUND_THRESHOLD = 0.995


@dataclass
class Plot:
    key: str
    title: str
    svg: str
    caption: str = ""


@dataclass
class LatencyGroup:
    """Completed operations of one history group, with when each was invoked and how long it took."""

    key: str
    label: str
    fault: str | None
    points: dict[str, list[tuple[float, float]]]  # outcome -> (invoke time, latency ms)
    unplotted: int = 0

    @property
    def count(self) -> int:
        return sum(len(v) for v in self.points.values())


def latency_groups(
    operations: dict[str, list[OperationEvent]], file_faults: dict[str, str] | None = None
) -> list[LatencyGroup]:
    """Pair write completions with their invokes (per file and process, Jepsen style) and group them.

    Operations of a chaos class (by the event's `fault`, or the class whose cycle names the file) are
    grouped across cycle files; anything else by file. A completion with neither `latency_ms` nor a
    matching invoke cannot be placed and is counted aside.
    """
    file_faults = file_faults or {}
    groups: dict[str, LatencyGroup] = {}
    for rel, events in operations.items():
        open_invokes: dict[str, float] = {}
        for ev in events:
            if ev.op != "write":
                continue  # the nemesis's own operations, reads and probes are not client writes
            if ev.type == "invoke":
                open_invokes[ev.process] = ev.time
                continue
            start = open_invokes.pop(ev.process, None)
            fault = ev.fault or file_faults.get(rel)
            key = f"fault:{fault}" if fault else f"file:{rel}"
            group = groups.get(key)
            if group is None:
                stem = rel.rsplit("/", 1)[-1].removesuffix(".jsonl")
                label = f"chaos · {fault}" if fault else stem
                group = groups[key] = LatencyGroup(key, label, fault, defaultdict(list))
            latency = ev.latency_ms
            if latency is None and start is not None:
                latency = max(0.0, (ev.time - start) * 1000)
            if latency is None:
                group.unplotted += 1
                continue
            t = start if start is not None else ev.time - latency / 1000
            group.points[ev.type].append((t, latency))
    return sorted(groups.values(), key=lambda g: (g.fault is not None, g.key))


def _fault_bands(cycles: list[CycleRecord], fault: str | None, t0: float) -> list[Band]:
    bands = []
    for c in cycles:
        if fault is not None and c.fault != fault:
            continue
        if c.fault_started_at is None:
            continue
        end = c.fault_healed_at if c.fault_healed_at is not None else c.fault_started_at
        applied = "" if c.fault_applied is not False else " (no evidence it took effect)"
        bands.append(Band(c.fault_started_at - t0, end - t0, f"cycle {c.cycle}: {c.fault}{applied}"))
    return bands


def latency_plot(group: LatencyGroup, cycles: list[CycleRecord], clock_offset_s: float = 0.0) -> Plot:
    """Writes (stamped on the chaos host) over time, fault windows (stamped on the operator) shaded:
    `clock_offset_s` (chaos minus operator, from phase4.json) puts the windows on the writes' clock."""
    all_points = [p for pts in group.points.values() for p in pts]
    t0 = min(t for t, _ in all_points) if all_points else 0.0
    series = [
        Series(outcome, [(t - t0, lat) for t, lat in group.points.get(outcome, [])], STATUS_COLOURS[outcome])
        for outcome in ("ok", "fail", "info")
        if group.points.get(outcome)
    ]
    bands = _fault_bands(cycles, group.fault, t0 - clock_offset_s) if group.fault else []
    caption = f"{group.count} completed operations"
    if group.unplotted:
        caption += f"; {group.unplotted} completions without a latency or an invoke are not drawn"
    if group.fault:
        caption += f"; {len(bands)} fault windows shaded"
        if clock_offset_s:
            caption += f", moved {clock_offset_s * 1000:+.1f} ms onto the chaos host's clock"
    svg = scatter_plot(
        series,
        title=f"Write latency over time — {group.label}",
        x_label="seconds since the first operation",
        y_label="latency (ms, log)",
        bands=bands,
        log_y=True,
        desc=caption,
    )
    return Plot(f"latency-{_slug(group.key)}", f"latency {group.label}", svg, caption)


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in text).strip("-")


def convergence_plots(report: Phase2Report) -> list[Plot]:
    out: list[Plot] = []
    if report.time_to_converge_s:
        deadline = report.converge_deadline_s
        bars = [
            Bar(node, t, STATUS_COLOURS["pass"]) if t is not None else
            Bar(node, None, note=f"did not converge{f' within {deadline:g} s' if deadline else ''}")
            for node, t in sorted(report.time_to_converge_s.items())
        ]
        values = [b.value for b in bars if b.value is not None]
        # The deadline line only when it is on the same scale as the data; otherwise it would flatten the bars.
        near = deadline is not None and bool(values) and max(values) >= deadline / 4
        caption = "seconds until each node held every acknowledged write"
        if deadline is not None:
            caption += f" (deadline {deadline:g} s)"
        out.append(Plot("converge-phase2", "time to converge", bar_chart(
            bars, title="Phase 2 — time to converge per node", x_label="seconds after the burst",
            threshold=deadline if near else None, threshold_label=f"deadline {deadline:g} s" if near else "",
            value_fmt="{:.2f} s",
        ), caption))
    if report.counts and report.ok is not None:
        ok = report.ok
        bars = [
            Bar(f"node {node}", float(n), STATUS_COLOURS["pass" if n >= ok else "fail"], f"/ {ok} ok")
            if n is not None else Bar(f"node {node}", None, note="count unreadable")
            for node, n in sorted(report.counts.items())
        ]
        out.append(Plot("rows-phase2", "rows per node", bar_chart(
            bars, title="Phase 2 — rows held per node vs acknowledged writes", x_label="rows",
            threshold=float(ok) if ok else None, threshold_label=f"ok = {ok}", value_fmt="{:.0f}",
        ), "every acknowledged write should be on every node"))
    return out


def cycle_strip(cycles: list[CycleRecord]) -> Plot | None:
    if not cycles:
        return None
    by_fault: dict[str, list[CycleRecord]] = defaultdict(list)
    for c in cycles:
        by_fault[c.fault].append(c)
    rows = []
    for fault, recs in sorted(by_fault.items()):
        cells = []
        for c in sorted(recs, key=lambda r: r.cycle):
            status = c.status or _cycle_status(c)
            title = (f"cycle {c.cycle}: {status}; ok {c.ok}/{c.writes}, lost {len(c.lost)}, "
                     f"unexpected {len(c.unexpected)}, duplicates {len(c.duplicates)}")
            if c.time_to_converge_s is not None:
                title += f", converged in {c.time_to_converge_s:.2f} s"
            cells.append(Cell(status, title))
        rows.append(StripRow(fault, cells))
    total = sum(len(r.cells) for r in rows)
    return Plot("cycles", "cycle outcomes", strip_chart(
        rows, title="Phase 4 — outcome of every chaos cycle", desc=f"{total} cycles"),
        f"{total} cycles; hover a square for its figures")


CLASS_COLOURS = ("#1565c0", "#6a1b9a", "#00838f", "#ad1457", "#558b2f", "#4e342e")


def cycle_convergence_plot(cycles: list[CycleRecord]) -> Plot | None:
    """Seconds each chaos cycle took to converge, per class; cycles that never converged are counted aside."""
    if not cycles:
        return None
    by_fault: dict[str, list[CycleRecord]] = defaultdict(list)
    for c in cycles:
        by_fault[c.fault].append(c)
    series, never = [], 0
    for i, (fault, recs) in enumerate(sorted(by_fault.items())):
        pts = [(float(c.cycle), c.time_to_converge_s) for c in recs if c.time_to_converge_s is not None]
        never += len(recs) - len(pts)
        series.append(Series(fault, pts, CLASS_COLOURS[i % len(CLASS_COLOURS)]))
    caption = f"{sum(len(s.points) for s in series)} cycles converged"
    if never:
        caption += f"; {never} cycles have no time to converge (did not converge or were not polled)"
    return Plot("cycle-converge", "time to converge per cycle", scatter_plot(
        series, title="Phase 4 — time to converge after each chaos cycle", x_label="cycle",
        y_label="seconds", desc=caption, dot=7), caption)


def _cycle_status(c: CycleRecord) -> str:
    """A cycle line without a recorded status: judged from what it carries, never guessed green."""
    if c.lost or c.unexpected or c.duplicates:
        return "fail"
    if c.converged is True and c.fault_applied is not False and c.ok > 0:
        return "pass"
    return "error"


def bound_plot(report: Phase4Report) -> Plot | None:
    bounds: dict[str, float | None] = dict(report.convergence_by_fault or {})
    for fault, res in report.faults.items():
        bounds.setdefault(fault, res.convergence_bound)
    if not bounds:
        return None
    bars = []
    for fault, b in sorted(bounds.items()):
        if b is None:
            bars.append(Bar(fault, None, note="no bound: nothing was acknowledged"))
        else:
            bars.append(Bar(fault, b, STATUS_COLOURS["pass" if b >= BOUND_THRESHOLD else "fail"]))
    return Plot("bounds", "convergence bound", bar_chart(
        bars, title="Phase 4 — convergence bound per fault class", x_label="Σ min(count) / Σ ok",
        threshold=BOUND_THRESHOLD, threshold_label=f"pass ≥ {BOUND_THRESHOLD}", max_value=1.0, value_fmt="{:.4f}",
    ), "upstream's metric; the gate also requires no lost, unexpected or duplicate writes")


def campaign_plots(data: RunData) -> list[Plot]:
    """Every plot the run's data supports, in reading order."""
    plots: list[Plot] = []
    file_faults = {c.history: c.fault for c in data.cycles if c.history}
    offset_s = 0.0
    for art in data.phases:
        if isinstance(art.report, Phase4Report):
            for fault, res in art.report.faults.items():
                file_faults.update(dict.fromkeys(res.history, fault))
            if art.report.clock_offset is not None:
                offset_s = art.report.clock_offset.offset_s
    for group in latency_groups(data.operations, file_faults):
        if group.count or group.unplotted:
            plots.append(latency_plot(group, data.cycles, offset_s))
    for art in data.phases:
        if isinstance(art.report, Phase2Report):
            plots.extend(convergence_plots(art.report))
    strip = cycle_strip(data.cycles)
    if strip:
        plots.append(strip)
    conv = cycle_convergence_plot(data.cycles)
    if conv:
        plots.append(conv)
    for art in data.phases:
        if isinstance(art.report, Phase4Report):
            p = bound_plot(art.report)
            if p:
                plots.append(p)
    return plots
