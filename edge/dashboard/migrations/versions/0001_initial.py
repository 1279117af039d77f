"""The first schema: sites, cameras, lines, zones, windows, counts, hourly totals, status.

A migration is a frozen copy of the schema at its time: never edit it, add the next one.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

COUNTS = [f"{d}_{c}" for d in ("in", "out") for c in ("pedestrian", "bike", "vehicle")]
CATEGORIES = ("pedestrian", "bike", "vehicle")


def _counts() -> list[sa.Column[int]]:
    return [sa.Column(name, sa.Integer, nullable=False) for name in COUNTS]


def _occupancy() -> list[sa.Column[float]]:
    return [sa.Column(f"mean_s_{c}", sa.Float, nullable=False) for c in CATEGORIES] + [
        sa.Column(f"max_{c}", sa.Integer, nullable=False) for c in CATEGORIES
    ]


def upgrade() -> None:
    op.create_table(
        "sites",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("online", sa.Boolean),
        sa.Column("status_at", sa.BigInteger),
        sa.Column("policy", sa.String(64)),
        sa.Column("policy_sha256", sa.String(64)),
        sa.Column("notice_url", sa.String(300)),
        sa.Column("notice", sa.Text),
        sa.Column("notice_at", sa.BigInteger),
    )
    op.create_table(
        "cameras",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("site", sa.String(64), sa.ForeignKey("sites.name"), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("window_s", sa.Integer),
        sa.Column("first_start", sa.BigInteger),
        sa.Column("last_end", sa.BigInteger),
        sa.Column("online", sa.Boolean),
        sa.Column("status_at", sa.BigInteger),
        sa.UniqueConstraint("site", "name"),
    )
    for table in ("lines", "zones"):
        op.create_table(
            table,
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("camera_id", sa.Integer, sa.ForeignKey("cameras.id"), nullable=False),
            sa.Column("name", sa.String(64), nullable=False),
            sa.UniqueConstraint("camera_id", "name"),
        )
    op.create_table(
        "windows",
        sa.Column("report_id", sa.String(32), primary_key=True),
        sa.Column("digest", sa.String(16), primary_key=True),
        sa.Column("camera_id", sa.Integer, sa.ForeignKey("cameras.id"), nullable=False),
        sa.Column("start", sa.BigInteger, nullable=False),
        sa.Column("end", sa.BigInteger, nullable=False),
        sa.Column("partial", sa.Boolean, nullable=False),
        sa.Column("frames", sa.Integer, nullable=False),
        sa.Column("observed_s", sa.Float, nullable=False),
        sa.Column("received_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_windows_camera_start", "windows", ["camera_id", "start"])
    op.create_index("ix_windows_start", "windows", ["start"])
    op.create_table(
        "line_counts",
        sa.Column("line_id", sa.Integer, sa.ForeignKey("lines.id"), nullable=False),
        sa.Column("start", sa.BigInteger, nullable=False),
        *_counts(),
    )
    op.create_index("ix_line_counts_line_start", "line_counts", ["line_id", "start"])
    op.create_index("ix_line_counts_start", "line_counts", ["start"])
    op.create_table(
        "line_hours",
        sa.Column("line_id", sa.Integer, sa.ForeignKey("lines.id"), primary_key=True),
        sa.Column("hour", sa.BigInteger, primary_key=True),
        *_counts(),
    )
    op.create_table(
        "zone_counts",
        sa.Column("zone_id", sa.Integer, sa.ForeignKey("zones.id"), nullable=False),
        sa.Column("start", sa.BigInteger, nullable=False),
        sa.Column("observed_s", sa.Float, nullable=False),
        *_occupancy(),
    )
    op.create_index("ix_zone_counts_zone_start", "zone_counts", ["zone_id", "start"])
    op.create_index("ix_zone_counts_start", "zone_counts", ["start"])
    op.create_table(
        "zone_hours",
        sa.Column("zone_id", sa.Integer, sa.ForeignKey("zones.id"), primary_key=True),
        sa.Column("hour", sa.BigInteger, primary_key=True),
        sa.Column("observed_s", sa.Float, nullable=False),
        *_occupancy(),
    )
    op.create_table(
        "camera_hours",
        sa.Column("camera_id", sa.Integer, sa.ForeignKey("cameras.id"), primary_key=True),
        sa.Column("hour", sa.BigInteger, primary_key=True),
        sa.Column("windows", sa.Integer, nullable=False),
        sa.Column("partial", sa.Integer, nullable=False),
        sa.Column("observed_s", sa.Float, nullable=False),
    )
    op.create_table(
        "status_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("site", sa.String(64), sa.ForeignKey("sites.name"), nullable=False),
        sa.Column("camera_id", sa.Integer, sa.ForeignKey("cameras.id")),
        sa.Column("at", sa.BigInteger, nullable=False),
        sa.Column("online", sa.Boolean, nullable=False),
    )
    op.create_index("ix_status_events_site_at", "status_events", ["site", "at"])
    op.create_table(
        "rejections",
        sa.Column("reason", sa.String(200), primary_key=True),
        sa.Column("count", sa.BigInteger, nullable=False),
        sa.Column("last_at", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "rejections", "status_events", "camera_hours", "zone_hours", "zone_counts",
        "line_hours", "line_counts", "windows", "zones", "lines", "cameras", "sites",
    ):  # fmt: skip
        op.drop_table(table)
