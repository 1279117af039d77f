"""Turning movements (report schema version 2): the movements and their hourly totals.

A migration is a frozen copy of the schema at its time: never edit it, add the next one.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "movements",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("camera_id", sa.Integer, sa.ForeignKey("cameras.id"), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("origin", sa.String(64), nullable=False),
        sa.Column("destination", sa.String(64), nullable=False),
        sa.UniqueConstraint("camera_id", "name", "origin", "destination"),
    )
    op.create_table(
        "movement_hours",
        sa.Column("movement_id", sa.Integer, sa.ForeignKey("movements.id"), primary_key=True),
        sa.Column("hour", sa.BigInteger, primary_key=True),
        *(
            sa.Column(c, sa.Integer, nullable=False, default=0)
            for c in ("pedestrian", "bike", "vehicle")
        ),
    )


def downgrade() -> None:
    op.drop_table("movement_hours")
    op.drop_table("movements")
