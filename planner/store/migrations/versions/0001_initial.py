"""initial schema

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("subject_type", sa.String(length=32), nullable=False),
        sa.Column("subject_id", sa.Integer(), nullable=False),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
    )
    op.create_index("ix_events_subject", "events", ["tenant_id", "subject_type", "subject_id"], unique=False)
    op.create_index("ix_events_tenant_at", "events", ["tenant_id", "at"], unique=False)

    op.create_table(
        "plans",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("tier", sa.String(length=16), nullable=False),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("master_id", sa.Integer(), nullable=True),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=False),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("ends_on", sa.Date(), nullable=False),
        sa.Column("constraints", sa.JSON(), nullable=False),
        sa.Column("iso_week", sa.String(length=10), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["parent_id"], ["plans.id"], name=op.f("fk_plans_parent_id_plans"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plans")),
        sa.UniqueConstraint("tenant_id", "parent_id", "iso_week", name=op.f("uq_plans_tenant_id_parent_id_iso_week")),
    )
    op.create_index("ix_plans_master", "plans", ["master_id"], unique=False)
    op.create_index("ix_plans_parent", "plans", ["parent_id"], unique=False)
    op.create_index("ix_plans_tenant_tier", "plans", ["tenant_id", "tier"], unique=False)

    op.create_table(
        "metrics",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("unit", sa.String(length=50), nullable=False),
        sa.Column("direction", sa.String(length=8), nullable=False),
        sa.Column("baseline", sa.Float(), nullable=False),
        sa.Column("target", sa.Float(), nullable=False),
        sa.Column("tolerance", sa.Float(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["plan_id"], ["plans.id"], name=op.f("fk_metrics_plan_id_plans"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_metrics")),
        sa.UniqueConstraint("plan_id", "name", name=op.f("uq_metrics_plan_id_name")),
    )
    op.create_index("ix_metrics_tenant", "metrics", ["tenant_id"], unique=False)

    op.create_table(
        "tasks",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("master_id", sa.Integer(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=True),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("milestone", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["plan_id"], ["plans.id"], name=op.f("fk_tasks_plan_id_plans"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tasks")),
    )
    op.create_index("ix_tasks_master_status", "tasks", ["master_id", "status"], unique=False)
    op.create_index("ix_tasks_plan_status", "tasks", ["plan_id", "status"], unique=False)
    op.create_index("ix_tasks_tenant_due", "tasks", ["tenant_id", "due_on"], unique=False)
    op.create_index("ix_tasks_tenant_owner", "tasks", ["tenant_id", "owner"], unique=False)

    op.create_table(
        "metric_readings",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("metric_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["metric_id"], ["metrics.id"], name=op.f("fk_metric_readings_metric_id_metrics"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_metric_readings")),
        sa.UniqueConstraint("metric_id", "at", "source", name=op.f("uq_metric_readings_metric_id_at_source")),
    )
    op.create_index("ix_metric_readings_metric_at", "metric_readings", ["metric_id", "at"], unique=False)

    op.create_table(
        "weekly_items",
        sa.Column("weekly_plan_id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("carried_over", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["task_id"], ["tasks.id"], name=op.f("fk_weekly_items_task_id_tasks"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["weekly_plan_id"], ["plans.id"], name=op.f("fk_weekly_items_weekly_plan_id_plans"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("weekly_plan_id", "task_id", name=op.f("pk_weekly_items")),
    )
    op.create_index("ix_weekly_items_task", "weekly_items", ["task_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_weekly_items_task", table_name="weekly_items")

    op.drop_table("weekly_items")
    op.drop_index("ix_metric_readings_metric_at", table_name="metric_readings")

    op.drop_table("metric_readings")
    op.drop_index("ix_tasks_tenant_owner", table_name="tasks")
    op.drop_index("ix_tasks_tenant_due", table_name="tasks")
    op.drop_index("ix_tasks_plan_status", table_name="tasks")
    op.drop_index("ix_tasks_master_status", table_name="tasks")

    op.drop_table("tasks")
    op.drop_index("ix_metrics_tenant", table_name="metrics")

    op.drop_table("metrics")
    op.drop_index("ix_plans_tenant_tier", table_name="plans")
    op.drop_index("ix_plans_parent", table_name="plans")
    op.drop_index("ix_plans_master", table_name="plans")

    op.drop_table("plans")
    op.drop_index("ix_events_tenant_at", table_name="events")
    op.drop_index("ix_events_subject", table_name="events")

    op.drop_table("events")
