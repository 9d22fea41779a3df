"""oauth sign-ins: the grants people give OAuth MCP adapters, and the sign-ins waiting for their callback

A user-delegated MCP adapter acts with the tokens of the person who delegated: they are kept sealed per adapter and
person (`oauth_grants`), and a sign-in card's `state` is remembered (hashed) until the authorization server sends the
person back to the bot (`oauth_sign_ins`).

Revision ID: 0022
Revises: 0021
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "oauth_grants",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("adapter", sa.String(length=100), nullable=False),
        sa.Column("user_id", sa.String(length=200), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "adapter", "user_id", name=op.f("pk_oauth_grants")),
    )
    op.create_table(
        "oauth_sign_ins",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=200), nullable=False),
        sa.Column("adapter", sa.String(length=100), nullable=False),
        sa.Column("delegation_id", sa.Integer(), nullable=True),
        sa.Column("state_hash", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("answer", sa.LargeBinary(), nullable=True),
        sa.Column("asked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oauth_sign_ins")),
        sa.UniqueConstraint("state_hash", name=op.f("uq_oauth_sign_ins_state_hash")),
    )


def downgrade() -> None:
    op.drop_table("oauth_sign_ins")
    op.drop_table("oauth_grants")
