"""The database schema, shared by the store and the Alembic migrations. Every table carries `tenant_id`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.types import TypeDecorator

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps no zone, so it is restored on read)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the store only accepts timezone-aware datetimes")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


TENANT = 64

plans = Table(
    "plans",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant_id", String(TENANT), nullable=False),
    Column("tier", String(16), nullable=False),
    Column("parent_id", Integer, ForeignKey("plans.id", ondelete="CASCADE"), nullable=True),
    Column("master_id", Integer, nullable=True),
    Column("title", Text, nullable=False),
    Column("owner", String(200), nullable=False),
    Column("starts_on", Date, nullable=False),
    Column("ends_on", Date, nullable=False),
    Column("constraints", JSON, nullable=False, default=list),
    Column("iso_week", String(10), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("version", Integer, nullable=False, default=1),
    Column("archived_at", UTCDateTime, nullable=True),
    UniqueConstraint("tenant_id", "parent_id", "iso_week"),
    Index("ix_plans_tenant_tier", "tenant_id", "tier"),
    Index("ix_plans_master", "master_id"),
    Index("ix_plans_parent", "parent_id"),
)

tasks = Table(
    "tasks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant_id", String(TENANT), nullable=False),
    Column("plan_id", Integer, ForeignKey("plans.id", ondelete="CASCADE"), nullable=False),
    Column("master_id", Integer, nullable=False),
    Column("title", Text, nullable=False),
    Column("owner", String(200), nullable=True),
    Column("due_on", Date, nullable=False),
    Column("status", String(16), nullable=False),
    Column("milestone", Boolean, nullable=False, default=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("started_at", UTCDateTime, nullable=True),
    Column("done_at", UTCDateTime, nullable=True),
    Column("snoozed_until", UTCDateTime, nullable=True),
    Column("blocked_reason", Text, nullable=True),
    Column("version", Integer, nullable=False, default=1),
    Index("ix_tasks_tenant_due", "tenant_id", "due_on"),
    Index("ix_tasks_plan_status", "plan_id", "status"),
    Index("ix_tasks_master_status", "master_id", "status"),
    Index("ix_tasks_tenant_owner", "tenant_id", "owner"),
    Index("ix_tasks_milestone_done", "milestone", "done_at"),
)

weekly_items = Table(
    "weekly_items",
    metadata,
    Column("weekly_plan_id", Integer, ForeignKey("plans.id", ondelete="CASCADE"), primary_key=True),
    Column("task_id", Integer, ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True),
    Column("tenant_id", String(TENANT), nullable=False),
    Column("carried_over", Boolean, nullable=False, default=False),
    Index("ix_weekly_items_task", "task_id"),
)

metrics = Table(
    "metrics",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant_id", String(TENANT), nullable=False),
    Column("plan_id", Integer, ForeignKey("plans.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("unit", String(50), nullable=False, default=""),
    Column("direction", String(8), nullable=False),
    Column("baseline", Float, nullable=False),
    Column("target", Float, nullable=False),
    Column("tolerance", Float, nullable=False),
    Column("version", Integer, nullable=False, default=1),
    # The master plan's KPI a tactical plan's metric is a share of (planner/domain/kpis.py). No foreign key: SQLite
    # adds one only by rebuilding the table, which would cascade-delete every reading; a share goes with its plan,
    # which goes with the master plan holding the KPI.
    Column("kpi_id", Integer, nullable=True),
    UniqueConstraint("plan_id", "name"),
    Index("ix_metrics_tenant", "tenant_id"),
)

metric_readings = Table(
    "metric_readings",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant_id", String(TENANT), nullable=False),
    Column("metric_id", Integer, ForeignKey("metrics.id", ondelete="CASCADE"), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("value", Float, nullable=False),
    Column("source", String(200), nullable=False),
    UniqueConstraint("metric_id", "at", "source"),
    Index("ix_metric_readings_metric_at", "metric_id", "at"),
)

events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant_id", String(TENANT), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("kind", String(64), nullable=False),
    Column("subject_type", String(32), nullable=False),
    Column("subject_id", Integer, nullable=False),
    Column("before", JSON, nullable=True),
    Column("after", JSON, nullable=True),
    Index("ix_events_subject", "tenant_id", "subject_type", "subject_id"),
    # Nothing reads events by time: an index on (tenant_id, at) cost every change a B-tree insert (dropped: 0012).
)

people = Table(
    "people",
    metadata,
    Column("tenant_id", String(TENANT), primary_key=True),
    Column("user_id", String(200), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("time_zone", String(64), nullable=True),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_people_tenant_name", "tenant_id", "name"),
)

conversations = Table(
    "conversations",
    metadata,
    Column("tenant_id", String(TENANT), primary_key=True),
    Column("conversation_id", String(400), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("user_id", String(200), nullable=True),
    Column("address", JSON, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_conversations_user", "tenant_id", "user_id", "kind"),
)

processed_keys = Table(
    "processed_keys",
    metadata,
    Column("tenant_id", String(TENANT), primary_key=True),
    Column("key", String(300), primary_key=True),
    Column("created_at", UTCDateTime, nullable=False),
)

drafts = Table(
    "drafts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant_id", String(TENANT), nullable=False),
    Column("author", String(200), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_drafts_tenant_status", "tenant_id", "status"),
)

firings = Table(
    "firings",
    metadata,
    Column("tenant_id", String(TENANT), primary_key=True),
    Column("key", String(300), primary_key=True),
    Column("fired_at", UTCDateTime, nullable=False),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant_id", String(TENANT), nullable=False),
    Column("firing_key", String(300), nullable=False),
    Column("recipient", String(400), nullable=False),
    Column("kind", String(64), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("status", String(16), nullable=False),
    Column("not_before", UTCDateTime, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("leased_by", String(100), nullable=True),
    Column("lease_until", UTCDateTime, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime, nullable=True),
    Index("ix_outbox_due", "status", "not_before"),
    Index("ix_outbox_tenant_status", "tenant_id", "status"),
    Index("ix_outbox_recipient_sent", "recipient", "sent_at"),
)

trigger_settings = Table(
    "trigger_settings",
    metadata,
    Column("tenant_id", String(TENANT), primary_key=True),
    Column("settings", JSON, nullable=False),
    Column("updated_by", String(200), nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

plan_health = Table(
    "plan_health",
    metadata,
    Column("plan_id", Integer, ForeignKey("plans.id", ondelete="CASCADE"), primary_key=True),
    Column("tenant_id", String(TENANT), nullable=False),
    Column("health", String(16), nullable=False),
    Column("checked_at", UTCDateTime, nullable=False),
)

adapters = Table(
    "adapters",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant_id", String(TENANT), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("name", String(100), nullable=False),
    Column("config", JSON, nullable=False),
    Column("secret_fields", JSON, nullable=False),
    Column("secrets", LargeBinary, nullable=True),
    Column("session", LargeBinary, nullable=True),
    Column("enabled", Boolean, nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("version", Integer, nullable=False),
    UniqueConstraint("tenant_id", "name"),
)
"""Registered vendor agents. `secrets` is one Vault token (JSON inside); `secret_fields` names what it holds;
`session` is a browser agent's signed-in session, encrypted by the agent with the same vault."""

adapter_tools = Table(
    "adapter_tools",
    metadata,
    Column("tenant_id", String(TENANT), primary_key=True),
    Column("adapter", String(100), primary_key=True),
    Column("capability", String(200), primary_key=True),
    Column("state", String(16), nullable=False),
    Column("definition", JSON, nullable=False),
    Column("pin", String(64), nullable=False),
    Column("decided_by", String(200), nullable=False),
    Column("decided_at", UTCDateTime, nullable=False),
    Column("held_reason", Text, nullable=True),
)
"""The tools of an adapter an admin enabled (with the definition pinned then, and its SHA-256) or that were held
since; a tool with no row is off."""

capability_gates = Table(
    "capability_gates",
    metadata,
    Column("tenant_id", String(TENANT), primary_key=True),
    Column("adapter", String(100), primary_key=True),
    Column("capability", String(200), primary_key=True),
    Column("categories", JSON, nullable=False),
    Column("classified_by", String(200), nullable=False),
    Column("classified_at", UTCDateTime, nullable=False),
)
"""The approval gates an admin classified a capability of an adapter under (an MCP tool, an A2A skill, a browser
recipe's capability): every call of it is held for their approvers, whatever its input says. No row: unclassified."""

circuit_breakers = Table(
    "circuit_breakers",
    metadata,
    Column("tenant_id", String(TENANT), primary_key=True),
    Column("adapter", String(100), primary_key=True),
    Column("state", String(16), nullable=False),
    Column("failures", Integer, nullable=False),
    Column("opened_at", UTCDateTime, nullable=True),
    Column("probe_until", UTCDateTime, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("version", Integer, nullable=False),
)

delegations = Table(
    "delegations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant_id", String(TENANT), nullable=False),
    Column("task_id", Integer, ForeignKey("tasks.id", ondelete="CASCADE"), nullable=False),
    Column("adapter", String(100), nullable=False),
    Column("adapter_kind", String(32), nullable=False),
    Column("capability", String(200), nullable=False),
    Column("input", JSON, nullable=False),
    Column("timeout_seconds", Float, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("status", String(16), nullable=False),
    Column("output", Text, nullable=True),
    Column("output_cut", Boolean, nullable=False, default=False, server_default=false()),
    Column("data", JSON, nullable=True),
    Column("progress", JSON, nullable=True),
    Column("live_card", JSON, nullable=True),
    Column("error", Text, nullable=True),
    Column("queued_at", UTCDateTime, nullable=False),
    Column("started_at", UTCDateTime, nullable=True),
    Column("finished_at", UTCDateTime, nullable=True),
    Column("seconds", Float, nullable=True),
    Column("attempts", Integer, nullable=False),
    Column("leased_by", String(100), nullable=True),
    Column("lease_until", UTCDateTime, nullable=True),
    Column("deferred_at", UTCDateTime, nullable=True),
    Column("retry_at", UTCDateTime, nullable=True),
    Column("owner_told_at", UTCDateTime, nullable=True),
    Index("ix_delegations_tenant_status", "tenant_id", "status"),
    Index("ix_delegations_task", "task_id"),
)

delegation_evidence = Table(
    "delegation_evidence",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("delegation_id", Integer, ForeignKey("delegations.id", ondelete="CASCADE"), nullable=False),
    Column("tenant_id", String(TENANT), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("media_type", String(100), nullable=False),
    Column("description", Text, nullable=False),
    Column("size", Integer, nullable=False),
    Column("content", LargeBinary, nullable=True),
    Index("ix_delegation_evidence_delegation", "delegation_id"),
)
"""What an agent showed for a delegation; `content` is None when it was over the size limit and not kept."""

questions = Table(
    "questions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant_id", String(TENANT), nullable=False),
    Column("user_id", String(200), nullable=False),
    Column("text", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("answer", String(200), nullable=True),
    Column("asked_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("answered_at", UTCDateTime, nullable=True),
    Index("ix_questions_open", "tenant_id", "user_id", "status"),
)

oauth_grants = Table(
    "oauth_grants",
    metadata,
    Column("tenant_id", String(TENANT), primary_key=True),
    Column("adapter", String(100), primary_key=True),
    Column("user_id", String(200), primary_key=True),
    Column("sealed", LargeBinary, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)
"""What a person let an OAuth MCP adapter do on their behalf (tokens) and the adapter's registration with the
authorization server (`user_id` empty): one Vault token each, written by the adapter as the grant changes."""

oauth_sign_ins = Table(
    "oauth_sign_ins",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant_id", String(TENANT), nullable=False),
    Column("user_id", String(200), nullable=False),
    Column("adapter", String(100), nullable=False),
    Column("delegation_id", Integer, nullable=True),
    Column("state_hash", String(64), nullable=False, unique=True),
    Column("authorization", LargeBinary, nullable=True),
    Column("status", String(16), nullable=False),
    Column("answer", LargeBinary, nullable=True),
    Column("asked_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("answered_at", UTCDateTime, nullable=True),
    Column("card", JSON, nullable=True),
)
"""A sign-in a person was sent, waiting for the authorization server to send them back to the bot's callback:
found by the SHA-256 of its `state`, answered once before it expires; the answer (the code) is sealed and wiped as
the waiting delegation reads it. `authorization`: the authorization URL (it holds the state), sealed, handed once to
the person's browser by the card's signed link to the bot, and wiped then or when the sign-in ends. `card`: where
the sign-in card lies once sent (its conversation and activity id), to update it in place when the sign-in ends."""

approval_roles = Table(
    "approval_roles",
    metadata,
    Column("tenant_id", String(TENANT), primary_key=True),
    Column("role", String(40), primary_key=True),
    Column("user_id", String(200), primary_key=True),
    Column("assigned_by", String(200), nullable=False),
    Column("assigned_at", UTCDateTime, nullable=False),
)
"""Who holds which approver role (`legal`, `finance`…) in a tenant."""

approval_gates = Table(
    "approval_gates",
    metadata,
    Column("tenant_id", String(TENANT), primary_key=True),
    Column("category", String(32), primary_key=True),
    Column("role", String(40), nullable=False),
    Column("updated_by", String(200), nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)
"""A tenant's changes to which role approves each gate category (the defaults live in `planner.domain.approvals`)."""

approval_requests = Table(
    "approval_requests",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant_id", String(TENANT), nullable=False),
    Column("action", JSON, nullable=False),
    Column("requester", String(200), nullable=False),
    Column("reason", Text, nullable=False),
    Column("policy", JSON, nullable=False),
    Column("resume", JSON, nullable=False),
    Column("roles", JSON, nullable=False),
    Column("approvers", JSON, nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("decided_by", String(200), nullable=True),
    Column("decided_at", UTCDateTime, nullable=True),
    Column("note", Text, nullable=True),
    Column("resumed_at", UTCDateTime, nullable=True),
    Index("ix_approval_requests_tenant_status", "tenant_id", "status"),
    Index("ix_approval_requests_due", "status", "expires_at"),
)
"""Actions waiting for a person's approval; `approvers` (user ids) and `roles` are fixed when it is asked."""

decisions = Table(
    "decisions",
    metadata,
    Column("tenant_id", String(TENANT), primary_key=True),
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("action", String(100), nullable=False),
    Column("subject", String(200), nullable=False),
    Column("verdict", String(32), nullable=False),
    Column("rationale", Text, nullable=False),
    Column("data", JSON, nullable=False),
    Column("data_hash", String(64), nullable=False),
    Column("refs", JSON, nullable=False),
    Column("rules", JSON, nullable=False),
    Column("approval_id", Integer, nullable=True),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Column("key_id", String(16), nullable=True),
    Index("ix_decisions_tenant_at", "tenant_id", "at"),
    Index("ix_decisions_tenant_subject", "tenant_id", "subject"),
)
"""The decision log: append-only, one chain per tenant (`seq` 1, 2, 3…; each `hash` covers `prev_hash`), signed
with the key `key_id` names (HMAC-SHA256; NULL: a plain SHA-256, for entries logged before the log was keyed).
On PostgreSQL a trigger refuses UPDATE, DELETE and TRUNCATE (see migration 0008)."""

decision_refs = Table(
    "decision_refs",
    metadata,
    Column("tenant_id", String(TENANT), primary_key=True),
    Column("ref", String(200), primary_key=True),
    Column("seq", Integer, primary_key=True, autoincrement=False),
)
"""Index of what each decision is about (its subject and the `refs` it holds): `why T12` and the plan filter."""

decision_heads = Table(
    "decision_heads",
    metadata,
    Column("tenant_id", String(TENANT), primary_key=True),
    Column("seq", Integer, nullable=False),
    Column("hash", String(64), nullable=False),
    Column("key_id", String(16), nullable=True),
)
"""The last entry of each tenant's chain: the row appenders lock, and what shows a deleted tail."""

policy_sets = Table(
    "policy_sets",
    metadata,
    Column("tenant_id", String(TENANT), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("document", JSON, nullable=False),
    Column("source", Text, nullable=False),
    Column("rule_count", Integer, nullable=False),
    Column("loaded_by", String(200), nullable=False),
    Column("loaded_at", UTCDateTime, nullable=False),
)
"""Each load of a tenant's policy rules; the highest version is the one in force (see planner/services/policy.py)."""

context_sources = Table(
    "context_sources",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant_id", String(TENANT), nullable=False),
    Column("name", String(100), nullable=False),
    Column("secret", LargeBinary, nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("rotated_at", UTCDateTime, nullable=True),
    UniqueConstraint("tenant_id", "name"),
)
"""Connected systems that post context events; `secret` is the HMAC key, encrypted with the vault."""

context_facts = Table(
    "context_facts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant_id", String(TENANT), nullable=False),
    Column("source", String(100), nullable=False),
    Column("event_id", String(200), nullable=False),
    Column("account", String(200), nullable=False),
    Column("type", String(32), nullable=False),
    Column("attributes", JSON, nullable=False),
    Column("observed_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    Column("superseded_at", UTCDateTime, nullable=True),
    Column("superseded_by", Integer, nullable=True),
    UniqueConstraint("tenant_id", "source", "event_id"),
    Index("ix_context_facts_account", "tenant_id", "account", "type", "observed_at"),
    Index("ix_context_facts_expires", "expires_at"),
)
"""Facts about accounts from connected systems (planner/services/context.py); the unique event id refuses replays."""

metric_feeds = Table(
    "metric_feeds",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant_id", String(TENANT), nullable=False),
    Column("metric_id", Integer, ForeignKey("metrics.id", ondelete="CASCADE"), nullable=False),
    Column("adapter", String(100), nullable=False),
    Column("capability", String(200), nullable=False),
    Column("input", JSON, nullable=False),
    Column("field", String(200), nullable=False),
    Column("unit", String(50), nullable=False),
    Column("every_minutes", Integer, nullable=False),
    Column("spend", Boolean, nullable=False, server_default=false()),
    Column("last_pulled_at", UTCDateTime, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("created_by", String(200), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("tenant_id", "metric_id", "adapter", "capability"),
    Index("ix_metric_feeds_due", "last_pulled_at"),
)
"""KPI readings pulled from an agent on a schedule: call `capability` with `input`, read `field` of its data; with
`spend`, the reading is the plan's spend to date too, and what it rose by is recorded as spend."""

playbooks = Table(
    "playbooks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant_id", String(TENANT), nullable=False),
    Column("name", String(100), nullable=False),
    Column("source_plan_id", Integer, nullable=True),
    Column("content", JSON, nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("tenant_id", "name"),
)
"""Playbooks saved from a tactical plan's retrospective (planner/services/playbooks.py): seeds the next plan."""

signed_event_ids = Table(
    "signed_event_ids",
    metadata,
    Column("tenant_id", String(TENANT), primary_key=True),
    Column("source", String(100), primary_key=True),
    Column("event_id", String(200), primary_key=True),
    Column("received_at", UTCDateTime, nullable=False),
    Index("ix_signed_event_ids_received_at", "received_at"),
)
"""Ids of the signed metric events received (see planner/services/ingestion.py): a second post of one is a replay. Kept
while an event with that id could still pass the freshness check."""

assistant_turns = Table(
    "assistant_turns",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant_id", String(TENANT), nullable=False),
    Column("conversation_id", String(400), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("messages", JSON, nullable=False),
    Column("size", Integer, nullable=False),
    Index("ix_assistant_turns_conversation", "tenant_id", "conversation_id", "id"),
    Index("ix_assistant_turns_tenant_at", "tenant_id", "at"),
)
"""What the assistant remembers of each conversation (planner/domain/memory.py): one row per exchange, a person's
message and the assistant's answer with its tool calls, as Messages API JSON; trimmed as each is added."""

budgets = Table(
    "budgets",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant_id", String(TENANT), nullable=False),
    Column("plan_id", Integer, ForeignKey("plans.id", ondelete="CASCADE"), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("version", Integer, nullable=False, default=1),
    Column("updated_by", String(200), nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("tenant_id", "plan_id"),
)
"""A master plan's budget, or a tactical plan's allocation of it (planner/domain/budgets.py), in minor units."""

spend = Table(
    "spend",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant_id", String(TENANT), nullable=False),
    Column("plan_id", Integer, ForeignKey("plans.id", ondelete="CASCADE"), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("spent_on", Date, nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("source", String(200), nullable=False),
    Column("actor", String(200), nullable=False),
    Index("ix_spend_tenant_plan_day", "tenant_id", "plan_id", "spent_on"),
)
"""Money spent on a plan's behalf, on a day, in minor units (recorded in chat or posted by a connected system)."""
