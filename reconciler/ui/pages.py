"""The overview, resource and costs pages: views (reconciler.ui.views) -> HTML. Pure."""

from __future__ import annotations

from markdown_it import MarkdownIt

from reconciler.render.markdown import render_markdown
from reconciler.state.document import JobAttempt, ResourceRecord
from reconciler.ui.chart import step_chart
from reconciler.ui.html import (
    attr,
    badge,
    dash,
    esc,
    notice,
    page,
    seg,
    table,
    url,
    usd,
    when,
)
from reconciler.ui.html import facts as facts_table
from reconciler.ui.sanitize import sanitize
from reconciler.ui.views import (
    OverviewRow,
    Snapshot,
    actual_cost,
    cost_points,
    cumulative_series,
    label_keys,
    labels_of,
    overview_rows,
    why_created,
)

# The plan's Markdown carries raw <details> blocks (the collapsible sections a PR comment
# shows), so raw HTML is on; `sanitize` then keeps only known tags, as GitHub does.
_markdown = MarkdownIt("commonmark", {"html": True}).enable("table")


REFRESH_SECONDS = 10
"""How often the overview reloads itself while a job is pending or running."""


def _banners(snapshot: Snapshot) -> str:
    out = ""
    if snapshot.desired_error:
        out += notice(f"The manifests could not be read: {snapshot.desired_error}", kind="error")
    if snapshot.live_error:
        out += notice(
            f"The service could not be read, so live states and the plan are missing: "
            f"{snapshot.live_error}"
        )
    return out


def _job_cell(row: OverviewRow) -> str:
    status = row.status
    if status.job_name is None:
        return "—"
    more = f" <span class=muted>(+{status.jobs - 1} shards)</span>" if status.jobs > 1 else ""
    state = status.live or status.recorded
    short = status.job_name if len(status.job_name) <= 20 else status.job_name[:18] + "…"
    return (
        f'<code title="{attr(status.job_name)}">{esc(short)}</code>{more} '
        f"{badge(state.value) if state else ''}"
    )


def _requests_cell(row: OverviewRow) -> str:
    status = row.status
    parts = []
    progress = row.progress
    if progress is not None:
        # While the jobs run, the service's own counts (batchStats) say how far they are.
        parts.append(f"{progress.done:,} / {progress.total:,} done")
        if progress.failed:
            parts.append(f'<span class="bad">{progress.failed:,} failed</span>')
        return " · ".join(parts)
    if row.requests is not None:
        parts.append(f"{row.requests:,} sent")
    if status.succeeded is not None:
        parts.append(f"{status.succeeded:,} ok")
    if status.failed:
        parts.append(f'<span class="bad">{status.failed:,} failed</span>')
    return " · ".join(parts) or "—"


def _results_cell(row: OverviewRow) -> str:
    location = row.status.results
    if location is None:
        return "—"
    return f'<a href="{attr(url("/resources/" + seg(row.name) + "/results"))}">{esc(location)}</a>'


def overview_page(snapshot: Snapshot, project: str) -> str:
    rows = overview_rows(snapshot)
    cells = [
        [
            f'<a class=name href="/resources/{attr(seg(r.name))}">{esc(r.name)}</a>',
            badge(r.phase),
            _job_cell(r),
            _requests_cell(r),
            _results_cell(r),
            usd(r.estimated_usd),
            usd(r.actual_usd),
            when(r.last_change),
        ]
        for r in rows
    ]
    headers = [
        "Resource",
        "Phase",
        "Current job",
        "Requests",
        "Results",
        "Estimated",
        "Actual",
        "Last change",
    ]
    body = _banners(snapshot)
    body += (
        table(headers, cells, css="overview")
        if rows
        else notice("No resources in the manifests or the state.", kind="info")
    )
    body += "<h2>Pending changes</h2>"
    if snapshot.plan is None:
        why = "the manifests" if snapshot.desired_error else "the service"
        body += f'<p class="muted">No plan: {why} could not be read.</p>'
    elif not snapshot.plan.has_changes:
        body += '<p class="ok">No changes: the service matches the manifests.</p>'
    else:
        markup = sanitize(_markdown.render(render_markdown(snapshot.plan)))
        body += f'<div class="plan">{markup}</div>'
    moving = any(r.phase in ("running", "pending") for r in rows)
    return page(
        "Overview", body, project=project, active="/", refresh=REFRESH_SECONDS if moving else 0
    )


def _attempt_row(record: ResourceRecord, attempt: JobAttempt) -> list[str]:
    usage = attempt.usage
    tokens = (
        f"{usage.prompt:,} in / {usage.output + usage.thinking:,} out" if usage is not None else "—"
    )
    shard = (
        "—"
        if attempt.shard is None
        else f"{attempt.shard}" + (f" (rerun {attempt.rerun})" if attempt.rerun else "")
    )
    return [
        str(attempt.number),
        shard,
        f"<code>{dash(attempt.job_name)}</code>",
        badge(attempt.state.value),
        esc(why_created(record, attempt)),
        when(attempt.intent_at),
        when(attempt.created_at),
        when(attempt.ended_at),
        dash(attempt.request_count),
        tokens,
        usd(attempt.cost_usd),
        dash(attempt.error or attempt.results_unusable),
    ]


def resource_page(snapshot: Snapshot, name: str, manifest_text: str | None, project: str) -> str:
    record = snapshot.state.resources.get(name)
    desired = snapshot.desired.resources.get(name) if snapshot.desired else None
    body = _banners(snapshot)
    labels = labels_of(snapshot, name)
    facts = [
        ["Labels", esc(", ".join(f"{k}={v}" for k, v in labels.items())) or "—"],
        [
            "Spec hash (desired)",
            f"<code>{dash(desired.spec_hash[:12] if desired else None)}</code>",
        ],
        ["Spec hash (state)", f"<code>{dash(record.spec_hash[:12] if record else None)}</code>"],
        ["Actual cost", usd(actual_cost(record))],
    ]
    action = snapshot.plan.action_for(name) if snapshot.plan else None
    if action is not None:
        facts.append(["Next", f"{badge(action.kind.value)} {esc(action.reason.text)}"])
    if record is not None and record.results is not None:
        results = record.results
        link = url(f"/resources/{seg(name)}/results")
        facts.append(
            [
                "Results",
                f'<a href="{attr(link)}">{esc(results.location)}</a> — '
                f"{results.succeeded:,} succeeded, {results.failed:,} failed, collected "
                f"{when(results.collected_at)} from attempt(s) "
                f"{esc(', '.join(map(str, results.from_attempts)))}",
            ]
        )
    body += facts_table(facts)
    body += "<h2>Attempts</h2>"
    if record is None or not record.attempts:
        body += '<p class="muted">No job was created for this resource yet.</p>'
    else:
        headers = [
            "#",
            "Shard",
            "Job",
            "State",
            "Why",
            "Intent",
            "Created",
            "Ended",
            "Requests",
            "Tokens",
            "Cost",
            "Error",
        ]
        body += table(headers, [_attempt_row(record, a) for a in record.attempts], css="attempts")
    if record is not None and record.input is not None and record.input.shards:
        body += "<h2>Shards</h2>" + table(
            ["Shard", "Requests", "Bytes", "File", "sha256"],
            [
                [
                    str(s.index),
                    f"{s.request_count:,}",
                    f"{s.bytes:,}",
                    f"<code>{dash(s.file_name)}</code>",
                    f"<code>{esc(s.sha256[:16])}</code>",
                ]
                for s in record.input.shards
            ],
        )
    body += "<h2>Manifest</h2>"
    if manifest_text is None:
        body += '<p class="muted">No manifest declares this resource now.</p>'
    else:
        where = desired.location.path if desired else ""
        body += f'<p class="muted">{esc(where)}</p><pre class="manifest">{esc(manifest_text)}</pre>'
    return page(name, body, project=project)


def costs_page(snapshot: Snapshot, by_label: str | None, project: str) -> str:
    points = cost_points(snapshot)
    keys = label_keys(points)
    label = by_label if by_label in keys else ("team" if "team" in keys else None)
    if label is None and keys:
        label = keys[0]
    total = sum(p.usd for p in points)
    body = _banners(snapshot)
    body += (
        f"<p>Collected spend: <b>{usd(total if points else None)}</b> over "
        f"{len(points)} collected job(s). Each point is a job's results, priced at batch rates "
        "when they were collected.</p>"
    )
    body += "<h2>By model</h2>" + step_chart(
        cumulative_series(points, "model"), label="Spend over time by model"
    )
    body += "<h2>By label</h2>"
    if label is None:
        body += '<p class="muted">No collected job has labels.</p>'
    else:
        choices = "".join(
            f'<a href="{attr(url("/costs", label=k))}"{" class=active" if k == label else ""}>'
            f"{esc(k)}</a> "
            for k in keys
        )
        body += f'<p class="labels">Label: {choices}</p>' + step_chart(
            cumulative_series(points, label), label=f"Spend over time by label {label}"
        )
    if points:
        body += "<h2>Collected jobs</h2>" + table(
            ["Collected", "Resource", "Model", "Cost"],
            [
                [
                    when(p.at),
                    f'<a href="/resources/{attr(seg(p.resource))}">{esc(p.resource)}</a>',
                    esc(p.model),
                    usd(p.usd),
                ]
                for p in reversed(points)
            ],
        )
    return page("Costs", body, project=project, active="/costs")


def error_page(status: int, message: str, project: str) -> str:
    return page(f"{status}", notice(message, kind="error"), project=project)
