"""Audit-log heads published by the boxes (``P/S/audit``): anchors kept off the box.

A migration is a frozen copy of the schema at its time: never edit it, add the next one.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_heads",
        sa.Column("site", sa.String(64), sa.ForeignKey("sites.name"), primary_key=True),
        sa.Column("head", sa.String(64), primary_key=True),
        sa.Column("entries", sa.BigInteger, nullable=False),
        sa.Column("at", sa.BigInteger, nullable=False),
        sa.Column("received_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_audit_heads_site_at", "audit_heads", ["site", "at"])


def downgrade() -> None:
    op.drop_table("audit_heads")
