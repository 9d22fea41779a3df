"""oauth sign-in card: where the sign-in card a person was sent lies

The bot keeps the sign-in card's conversation and activity id with the sign-in, so that once the person has signed
in (or the sign-in failed or expired) the card is updated in place to say so, without its Sign in button. Sign-ins
whose card was sent without an id have none.

Revision ID: 0027
Revises: 0026
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("oauth_sign_ins") as batch:
        batch.add_column(sa.Column("card", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("oauth_sign_ins") as batch:
        batch.drop_column("card")
