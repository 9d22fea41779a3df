"""events: drop the index on (tenant_id, at), which no query reads

The history is read by tenant and subject, newest first by id (`ix_events_subject`); nothing reads events by time.
The index only cost every recorded change a B-tree insert, and a delegation a page more in each of its commits.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_events_tenant_at", table_name="events")


def downgrade() -> None:
    op.create_index("ix_events_tenant_at", "events", ["tenant_id", "at"], unique=False)
