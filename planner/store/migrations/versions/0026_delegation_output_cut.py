"""delegation output cut: whether the agent's answer was longer than the part kept

An answer longer than the delegation keeps was stored with an English mark appended to it; the delegation now keeps
the answer's beginning alone and says it was cut in a column of its own, which the bot words on the card. Answers
stored with the mark lose it and are marked cut.

Revision ID: 0026
Revises: 0025
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None

_KEPT = 200_000
_MARK = " … (cut: the answer was longer)"


def upgrade() -> None:
    with op.batch_alter_table("delegations") as batch:
        batch.add_column(sa.Column("output_cut", sa.Boolean(), nullable=False, server_default=sa.false()))
    delegations = sa.table("delegations", sa.column("output", sa.Text()), sa.column("output_cut", sa.Boolean()))
    op.execute(
        delegations.update()
        .where(delegations.c.output.endswith(_MARK, autoescape=True))
        .values(output=sa.func.substr(delegations.c.output, 1, _KEPT), output_cut=sa.true())
    )


def downgrade() -> None:
    with op.batch_alter_table("delegations") as batch:
        batch.drop_column("output_cut")
