"""adapter tools: off until an admin enables them, their definitions pinned

A tool of an MCP adapter is callable only once an admin enabled it; the definition it had then (name, description,
input schema, annotations) is kept with its SHA-256, and a tool whose server later defines it otherwise is held.
Adapters registered before this revision have no tool enabled: an admin enables the ones they use.

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "adapter_tools",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("adapter", sa.String(length=100), nullable=False),
        sa.Column("capability", sa.String(length=200), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("pin", sa.String(length=64), nullable=False),
        sa.Column("decided_by", sa.String(length=200), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("held_reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "adapter", "capability", name=op.f("pk_adapter_tools")),
    )


def downgrade() -> None:
    op.drop_table("adapter_tools")
