"""The dashboard's tables (SQLAlchemy Core), for SQLite and PostgreSQL alike.

Counts are stored wide, one column per direction and category, because both sets are closed
by the published schema: a row per window and line is six times fewer rows than a tidy table.
Every window is also added to hourly totals as it arrives, so hour and day charts never scan
the raw windows, and the raw windows can be deleted after ``raw_retention_days``.
Times are integer Unix seconds (UTC): window starts are whole multiples of whole seconds.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from edge.schema import CATEGORY_NAMES, DIRECTIONS

COUNT_COLUMNS = tuple(f"{d}_{c}" for d in DIRECTIONS for c in CATEGORY_NAMES)

metadata = MetaData()


def _counts() -> list[Column[int]]:
    return [Column(name, Integer, nullable=False, default=0) for name in COUNT_COLUMNS]


def _occupancy() -> list[Column[float]]:
    """Zone occupancy: time-weighted sum of the mean (mean x seconds) and the peak."""
    return [Column(f"mean_s_{c}", Float, nullable=False, default=0.0) for c in CATEGORY_NAMES] + [
        Column(f"max_{c}", Integer, nullable=False, default=0) for c in CATEGORY_NAMES
    ]


sites = Table(
    "sites",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("online", Boolean),
    Column("status_at", BigInteger),
    Column("policy", String(64)),
    Column("policy_sha256", String(64)),
    Column("notice_url", String(300)),
    Column("notice", Text),
    Column("notice_at", BigInteger),
)

cameras = Table(
    "cameras",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("site", String(64), ForeignKey("sites.name"), nullable=False),
    Column("name", String(64), nullable=False),
    Column("window_s", Integer),
    Column("first_start", BigInteger),
    Column("last_end", BigInteger),
    Column("online", Boolean),
    Column("status_at", BigInteger),
    UniqueConstraint("site", "name"),
)

lines = Table(
    "lines",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("camera_id", Integer, ForeignKey("cameras.id"), nullable=False),
    Column("name", String(64), nullable=False),
    UniqueConstraint("camera_id", "name"),
)

zones = Table(
    "zones",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("camera_id", Integer, ForeignKey("cameras.id"), nullable=False),
    Column("name", String(64), nullable=False),
    UniqueConstraint("camera_id", "name"),
)

# One row per delivery that was kept: a redelivery has the same report id and digest and is
# dropped; two parts of one window (a box restarted mid-window) share the id, not the digest.
windows = Table(
    "windows",
    metadata,
    Column("report_id", String(32), primary_key=True),
    Column("digest", String(16), primary_key=True),
    Column("camera_id", Integer, ForeignKey("cameras.id"), nullable=False),
    Column("start", BigInteger, nullable=False),
    Column("end", BigInteger, nullable=False),
    Column("partial", Boolean, nullable=False),
    Column("frames", Integer, nullable=False),
    Column("observed_s", Float, nullable=False),
    Column("received_at", BigInteger, nullable=False),
    Index("ix_windows_camera_start", "camera_id", "start"),
    Index("ix_windows_start", "start"),
)

line_counts = Table(
    "line_counts",
    metadata,
    Column("line_id", Integer, ForeignKey("lines.id"), nullable=False),
    Column("start", BigInteger, nullable=False),
    *_counts(),
    Index("ix_line_counts_line_start", "line_id", "start"),
    Index("ix_line_counts_start", "start"),
)

line_hours = Table(
    "line_hours",
    metadata,
    Column("line_id", Integer, ForeignKey("lines.id"), primary_key=True),
    Column("hour", BigInteger, primary_key=True),
    *_counts(),
)

zone_counts = Table(
    "zone_counts",
    metadata,
    Column("zone_id", Integer, ForeignKey("zones.id"), nullable=False),
    Column("start", BigInteger, nullable=False),
    Column("observed_s", Float, nullable=False),
    *_occupancy(),
    Index("ix_zone_counts_zone_start", "zone_id", "start"),
    Index("ix_zone_counts_start", "start"),
)

zone_hours = Table(
    "zone_hours",
    metadata,
    Column("zone_id", Integer, ForeignKey("zones.id"), primary_key=True),
    Column("hour", BigInteger, primary_key=True),
    Column("observed_s", Float, nullable=False, default=0.0),
    *_occupancy(),
)

# Completeness after the raw windows are gone: windows and seconds watched per camera and hour.
# Turning movements (schema version 2 reports): objects that passed ``origin`` then
# ``destination``, two lines of the camera; a movement redefined under the same name is a new row.
movements = Table(
    "movements",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("camera_id", Integer, ForeignKey("cameras.id"), nullable=False),
    Column("name", String(64), nullable=False),
    Column("origin", String(64), nullable=False),
    Column("destination", String(64), nullable=False),
    UniqueConstraint("camera_id", "name", "origin", "destination"),
)

movement_hours = Table(
    "movement_hours",
    metadata,
    Column("movement_id", Integer, ForeignKey("movements.id"), primary_key=True),
    Column("hour", BigInteger, primary_key=True),
    *(Column(c, Integer, nullable=False, default=0) for c in CATEGORY_NAMES),
)

camera_hours = Table(
    "camera_hours",
    metadata,
    Column("camera_id", Integer, ForeignKey("cameras.id"), primary_key=True),
    Column("hour", BigInteger, primary_key=True),
    Column("windows", Integer, nullable=False, default=0),
    Column("partial", Integer, nullable=False, default=0),
    Column("observed_s", Float, nullable=False, default=0.0),
)

# Status changes ("online"/"offline") of a camera, or of a whole site when camera_id is null.
status_events = Table(
    "status_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("site", String(64), ForeignKey("sites.name"), nullable=False),
    Column("camera_id", Integer, ForeignKey("cameras.id")),
    Column("at", BigInteger, nullable=False),
    Column("online", Boolean, nullable=False),
    Index("ix_status_events_site_at", "site", "at"),
)

# Messages refused by the collector, counted by reason (field path and error type, no values).
rejections = Table(
    "rejections",
    metadata,
    Column("reason", String(200), primary_key=True),
    Column("count", BigInteger, nullable=False),
    Column("last_at", BigInteger, nullable=False),
)

# Every distinct audit-log head a site published (AuditHeadMessage): anchors kept off the box.
# A head vouches for every entry up to it, so the latest one suffices to verify a log; older
# ones go with the raw retention (by ``at``, the box's time of publication).
audit_heads = Table(
    "audit_heads",
    metadata,
    Column("site", String(64), ForeignKey("sites.name"), primary_key=True),
    Column("head", String(64), primary_key=True),
    Column("entries", BigInteger, nullable=False),
    Column("at", BigInteger, nullable=False),
    Column("received_at", BigInteger, nullable=False),
    Index("ix_audit_heads_site_at", "site", "at"),
)
