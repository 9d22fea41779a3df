"""oauth sign-ins keep their authorization URL sealed, for the card's signed link to the bot to hand out once

The sign-in card no longer holds the vendor's authorization URL (it carries the request's state): the sign-in keeps
it sealed with the vault, and the card's button is the bot's signed link that redirects to it once.

Revision ID: 0025
Revises: 0024
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("oauth_sign_ins", sa.Column("authorization", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    op.drop_column("oauth_sign_ins", "authorization")
