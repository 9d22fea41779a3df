"""one KPI across tiers: a tactical plan's metric is a share of its master plan's KPI

`metrics.kpi_id` links a tactical plan's metric to the KPI of the same name on its master plan. Existing tactical
metrics with such a KPI are linked, and their readings move to the KPI (a reading is of the KPI wherever it was
recorded); a reading that would collide with one the KPI already has at the same time from the same source stays
where it was.

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain column (no foreign key): SQLite adds a constraint only by rebuilding `metrics`, and dropping the old
    # table would cascade-delete every reading.
    with op.batch_alter_table("metrics", schema=None) as batch_op:
        batch_op.add_column(sa.Column("kpi_id", sa.Integer(), nullable=True))
    bind = op.get_bind()
    metrics = sa.table(
        "metrics",
        sa.column("id", sa.Integer()),
        sa.column("plan_id", sa.Integer()),
        sa.column("name", sa.String()),
        sa.column("kpi_id", sa.Integer()),
    )
    plans = sa.table("plans", sa.column("id", sa.Integer()), sa.column("tier", sa.String()), sa.column("parent_id"))
    readings = sa.table(
        "metric_readings",
        sa.column("id", sa.Integer()),
        sa.column("metric_id", sa.Integer()),
        sa.column("at", sa.DateTime(timezone=True)),
        sa.column("source", sa.String()),
    )
    master = sa.select(plans.c.id, plans.c.parent_id).where(plans.c.tier == "tactical").subquery()
    kpi = metrics.alias("kpi")
    pairs = bind.execute(
        sa.select(metrics.c.id, kpi.c.id.label("kpi"))
        .join(master, master.c.id == metrics.c.plan_id)
        .join(
            kpi,
            sa.and_(kpi.c.plan_id == master.c.parent_id, sa.func.lower(kpi.c.name) == sa.func.lower(metrics.c.name)),
        )
    ).all()
    for share_id, kpi_id in pairs:
        bind.execute(sa.update(metrics).where(metrics.c.id == share_id).values(kpi_id=kpi_id))
        taken = readings.alias("taken")
        collides = sa.exists().where(
            taken.c.metric_id == kpi_id, taken.c.at == readings.c.at, taken.c.source == readings.c.source
        )
        bind.execute(sa.update(readings).where(readings.c.metric_id == share_id, ~collides).values(metric_id=kpi_id))


def downgrade() -> None:
    # ALTER TABLE … DROP COLUMN on SQLite too (3.35+): a batch rebuild would cascade-delete the readings.
    op.drop_column("metrics", "kpi_id")
