"""The public information notice a city must display (GDPR art. 12-13; CNIL, July 2022: the
CNIL found communes failing exactly this duty). Rendered from the deployment declaration and
the policy, so what the sign says and what the box does come from the same file."""

from __future__ import annotations

import html
from collections.abc import Sequence

from edge.config import CameraConfig, DeploymentConfig
from edge.legal.policy import Policy

NEVER = [
    "identify anyone, recognise faces or read number plates",
    "follow a person across cameras or over time, or keep any image",
    "guess age, gender, emotion or any other personal trait",
    "raise alerts on behaviour, gatherings, parking or 'abnormal' events",
    "publish anything but counts per category and per period of at least {minutes} minute(s)",
]


def notice_sections(
    deployment: DeploymentConfig, policy: Policy, cameras: Sequence[CameraConfig]
) -> list[tuple[str, list[str]]]:
    """(heading, lines) pairs: the facts, independent of the output format."""
    unknown = "(not declared)"
    minutes = max(policy.min_window_seconds // 60, 1)
    categories = ", ".join(c.value for c in policy.allowed_categories)
    return [
        ("Who counts", [f"Controller: {deployment.controller or unknown}"]),
        (
            "Why",
            [
                f"Purpose: {deployment.purpose or unknown} - anonymous statistics of footfall "
                "and traffic.",
                f"Legal basis: {deployment.legal_basis or unknown}",
            ],
        ),
        (
            "What is counted",
            [
                f"Objects counted: {categories}, crossing counting lines or present in zones.",
                f"Published: totals per category every {minutes} minute(s) or more; images "
                "are analysed on the device in real time and never stored or transmitted.",
            ],
        ),
        (
            "What is never done",
            [f"This device does not {item.format(minutes=minutes)}." for item in NEVER],
        ),
        (
            "Where",
            [f"Camera {c.id}: {c.location or unknown}" for c in cameras] or [unknown],
        ),
        (
            "Retention",
            [
                f"Counts not yet delivered are kept on the device for at most "
                f"{policy.retention.spool_days} days; the audit log of the device "
                f"{policy.retention.audit_days} days. Declared by the controller: "
                f"{deployment.retention_days or unknown} days.",
            ],
        ),
        (
            "Your rights",
            [
                "No image and no data about any individual is kept, so there is nothing about "
                "you to access, correct or erase; you may object to the processing and lodge a "
                "complaint with the CNIL (www.cnil.fr).",
                f"Data protection officer: {deployment.dpo_contact or unknown}",
            ],
        ),
        (
            "Reference",
            [
                f"Notice: {deployment.notice_url or unknown}; signage: "
                f"{deployment.signage_reference or unknown}",
                f"Policy {policy.name} v{policy.version}, sha256 {policy.sha256}",
            ],
        ),
    ]


def render_notice(
    deployment: DeploymentConfig,
    policy: Policy,
    cameras: Sequence[CameraConfig],
    fmt: str = "md",
) -> str:
    sections = notice_sections(deployment, policy, cameras)
    title = "Camera counting in this area: information notice"
    if fmt == "html":
        body = "".join(
            f"<h2>{html.escape(head)}</h2><ul>"
            + "".join(f"<li>{html.escape(line)}</li>" for line in lines)
            + "</ul>"
            for head, lines in sections
        )
        return (
            f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
            f"</head><body><h1>{title}</h1>{body}</body></html>\n"
        )
    out = [f"# {title}", ""]
    for head, lines in sections:
        out += [f"## {head}", "", *(f"- {line}" for line in lines), ""]
    return "\n".join(out)
