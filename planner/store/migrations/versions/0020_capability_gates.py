"""capability gates: the approval gates an admin classifies each adapter capability under

Every call of a classified capability (an MCP tool, an A2A skill, a browser recipe's capability) is held for the
approvers of its gates, whatever the delegation's input declares. Capabilities stored before this revision are
unclassified: only their input and the policy rules gate them, as before.

Revision ID: 0020
Revises: 0019
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "capability_gates",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("adapter", sa.String(length=100), nullable=False),
        sa.Column("capability", sa.String(length=200), nullable=False),
        sa.Column("categories", sa.JSON(), nullable=False),
        sa.Column("classified_by", sa.String(length=200), nullable=False),
        sa.Column("classified_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "adapter", "capability", name=op.f("pk_capability_gates")),
    )


def downgrade() -> None:
    op.drop_table("capability_gates")
