"""Table definitions (SQLAlchemy Core). Migrations mirror these; stores query them."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def utcnow() -> datetime:
    return datetime.now(UTC)


def aware(moment: datetime) -> datetime:
    """A stored timestamp in UTC: SQLite hands back naive datetimes."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


Timestamp = sa.DateTime(timezone=True)

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(100), nullable=False, unique=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False, default=utcnow),
    sa.Column("disabled", sa.Boolean, nullable=False, default=False),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("user_id", sa.String(64), sa.ForeignKey("users.id", ondelete="CASCADE"),
              nullable=False, index=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("prefix", sa.String(16), nullable=False),
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", Timestamp, nullable=False, default=utcnow),
    sa.Column("revoked_at", Timestamp, nullable=True),
    # The key's own rate-limit overrides ({"chat": "120/minute", "tokens_per_day": 50000});
    # null: its role's defaults.
    sa.Column("limits", sa.JSON, nullable=True),
    # When its dashboard sign-ins were last ended (sign-out), in seconds since the epoch:
    # a browser session issued before then is no longer accepted.
    sa.Column("sessions_ended_at", sa.Float, nullable=True),
)

# Dashboard sessions signed out one by one, kept until their cookie would have expired
# anyway (``expires_at``, epoch seconds), then pruned.
ended_browser_sessions = sa.Table(
    "ended_browser_sessions",
    metadata,
    sa.Column("session_id", sa.String(64), primary_key=True),
    sa.Column("key_id", sa.String(32), sa.ForeignKey("api_keys.id", ondelete="CASCADE"),
              nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False, index=True),
)

personas = sa.Table(
    "personas",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("owner_id", sa.String(64), sa.ForeignKey("users.id", ondelete="RESTRICT"),
              nullable=True, index=True),
    sa.Column("visibility", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("current_version", sa.Integer, nullable=False),
    sa.Column("name", sa.String(200), nullable=False, index=True),
    sa.Column("display_name", sa.String(200), nullable=True),
    sa.Column("language", sa.String(35), nullable=False, index=True),
    sa.Column("search_text", sa.Text, nullable=False),
    sa.Column("definition_hash", sa.String(64), nullable=False),
    sa.Column("source_hash", sa.String(64), nullable=True),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
)

persona_versions = sa.Table(
    "persona_versions",
    metadata,
    sa.Column("persona_id", sa.String(64), sa.ForeignKey("personas.id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("number", sa.Integer, primary_key=True),
    # JSON (not JSONB) keeps key order, so trait blocks render in the author's order.
    sa.Column("definition", sa.JSON, nullable=False),
    sa.Column("definition_hash", sa.String(64), nullable=False),
    sa.Column("author", sa.String(100), nullable=False),
    sa.Column("note", sa.Text, nullable=False, default=""),
    sa.Column("created_at", Timestamp, nullable=False),
)

persona_tags = sa.Table(
    "persona_tags",
    metadata,
    sa.Column("persona_id", sa.String(64), sa.ForeignKey("personas.id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("tag", sa.String(100), primary_key=True, index=True),
)

# A persona's files (avatars, card assets), content-addressed and immutable. Scoped to
# one persona: a definition can only name blobs stored for its own id.
persona_assets = sa.Table(
    "persona_assets",
    metadata,
    sa.Column("persona_id", sa.String(64), sa.ForeignKey("personas.id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("sha256", sa.String(64), primary_key=True),
    sa.Column("media_type", sa.String(100), nullable=False),
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("data", sa.LargeBinary, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
)

persona_metrics = sa.Table(
    "persona_metrics",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("persona_id", sa.String(64), sa.ForeignKey("personas.id", ondelete="CASCADE"),
              nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("metric", sa.String(64), nullable=False),
    sa.Column("bucket_start", Timestamp, nullable=False),
    sa.Column("count", sa.BigInteger, nullable=False, default=0),
    sa.Column("total", sa.Float, nullable=False, default=0.0),
    sa.Column("minimum", sa.Float, nullable=True),
    sa.Column("maximum", sa.Float, nullable=True),
    sa.UniqueConstraint("persona_id", "version", "metric", "bucket_start",
                        name="uq_persona_metrics_cell"),
)

# Every persona write appends here in its own transaction; other processes read it to
# invalidate their caches (SQLite polls it; PostgreSQL also gets NOTIFY).
change_log = sa.Table(
    "change_log",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("persona_id", sa.String(64), nullable=True),
    sa.Column("changed_at", Timestamp, nullable=False),
)

sessions = sa.Table(
    "sessions",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("user_id", sa.String(64), sa.ForeignKey("users.id", ondelete="CASCADE"),
              nullable=False, index=True),
    # No foreign key: history must outlive a persona's hard delete.
    sa.Column("persona_id", sa.String(64), nullable=False),
    sa.Column("persona_version", sa.Integer, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # open | closed | expired
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("last_active_at", Timestamp, nullable=False, index=True),
    sa.Column("turns", sa.Integer, nullable=False, default=0),
    sa.Column("response_ms_total", sa.Float, nullable=False, default=0.0),
    # One turn at a time: a turn claims the session by compare-and-set on these. The
    # claim is a lease: its holder (process instance, server node name) renews it
    # until it ends; once it has expired, the holder is taken to be gone.
    sa.Column("turn_id", sa.String(32), nullable=True),
    sa.Column("turn_started_at", Timestamp, nullable=True),
    sa.Column("turn_expires_at", Timestamp, nullable=True),
    sa.Column("turn_holder", sa.String(32), nullable=True),
    sa.Column("turn_node", sa.String(200), nullable=True),
    sa.Column("meta", sa.JSON, nullable=False, default=dict),
)

# The claims held now: few at any time, scanned by the sweep for expired ones.
sa.Index("ix_sessions_claimed", sessions.c.turn_expires_at,
         postgresql_where=sessions.c.turn_id.is_not(None),
         sqlite_where=sessions.c.turn_id.is_not(None))

messages = sa.Table(
    "messages",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("session_id", sa.String(32), sa.ForeignKey("sessions.id", ondelete="CASCADE"),
              nullable=False, index=True),
    sa.Column("role", sa.String(16), nullable=False),  # user | assistant | event
    sa.Column("content", sa.Text, nullable=False),
    sa.Column("persona_id", sa.String(64), nullable=False),
    sa.Column("persona_version", sa.Integer, nullable=False),
    # complete | interrupted | failed, or streaming while its turn writes it
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("meta", sa.JSON, nullable=False, default=dict),
)

# The replies still being written: few at any time, found at start-up and by the sweep.
sa.Index("ix_messages_streaming", messages.c.session_id,
         postgresql_where=messages.c.status == "streaming",
         sqlite_where=messages.c.status == "streaming")

panels = sa.Table(
    "panels",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("owner_id", sa.String(64), sa.ForeignKey("users.id", ondelete="CASCADE"),
              nullable=False, index=True),
    sa.Column("name", sa.String(100), nullable=False),
    # The panel itself (description, persona ids, rubric, options) as validated JSON.
    sa.Column("definition", sa.JSON, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
    sa.UniqueConstraint("owner_id", "name", name="uq_panels_owner_name"),
)

evaluations = sa.Table(
    "evaluations",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("owner_id", sa.String(64), sa.ForeignKey("users.id", ondelete="CASCADE"),
              nullable=False, index=True),
    sa.Column("panel_id", sa.String(32), nullable=True),  # history outlives the panel
    sa.Column("title", sa.String(200), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # running|completed|cancelled
    sa.Column("content_format", sa.String(8), nullable=False),
    # Rubric, options and the pinned persona versions, frozen when it was created.
    sa.Column("spec", sa.JSON, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False, index=True),
    sa.Column("finished_at", Timestamp, nullable=True),
)

evaluation_segments = sa.Table(
    "evaluation_segments",
    metadata,
    sa.Column("evaluation_id", sa.String(32),
              sa.ForeignKey("evaluations.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("index", sa.Integer, primary_key=True),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("start_ms", sa.Integer, nullable=True),
    sa.Column("end_ms", sa.Integer, nullable=True),
    # pending | done | failed | skipped (classification off)
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("topic", sa.String(200), nullable=True),
    sa.Column("tone", sa.String(64), nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
)

# One row per persona x segment: written once when the evaluation is created, then
# overwritten in place, so a rerun or a duplicate job can never add a second result.
evaluation_scores = sa.Table(
    "evaluation_scores",
    metadata,
    sa.Column("evaluation_id", sa.String(32),
              sa.ForeignKey("evaluations.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("segment_index", sa.Integer, primary_key=True),
    sa.Column("persona_id", sa.String(64), primary_key=True),
    sa.Column("persona_version", sa.Integer, nullable=False),
    # pending | running | done | failed | cancelled
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("score", sa.Integer, nullable=True),
    sa.Column("opinion", sa.Text, nullable=True),
    sa.Column("fields", sa.JSON, nullable=True),
    sa.Column("adherence", sa.JSON, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("updated_at", Timestamp, nullable=False),
    sa.Index("ix_evaluation_scores_status", "evaluation_id", "status"),
)

# Persona test runs: the suite as validated and the run's options frozen at creation;
# the report is written once, at the end (so a run restarted from scratch is safe).
test_runs = sa.Table(
    "test_runs",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("owner_id", sa.String(64), sa.ForeignKey("users.id", ondelete="CASCADE"),
              nullable=False, index=True),
    sa.Column("persona_id", sa.String(64), nullable=False),
    sa.Column("persona_version", sa.Integer, nullable=False),
    sa.Column("suite", sa.JSON, nullable=False),
    sa.Column("options", sa.JSON, nullable=False),  # repeat, provider, model
    # queued | running | completed | failed | cancelled
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("done", sa.Integer, nullable=False, default=0),
    sa.Column("total", sa.Integer, nullable=False),
    sa.Column("result", sa.JSON, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("created_at", Timestamp, nullable=False, index=True),
    sa.Column("updated_at", Timestamp, nullable=False),
    sa.Column("finished_at", Timestamp, nullable=True),
)

# A writing persona's samples: private to the persona's owner, replaced as a set, and
# gone with the persona. The definition keeps only their count, size and digest.
writing_samples = sa.Table(
    "writing_samples",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("persona_id", sa.String(64), sa.ForeignKey("personas.id", ondelete="CASCADE"),
              nullable=False, index=True),
    sa.Column("owner_id", sa.String(64), sa.ForeignKey("users.id", ondelete="CASCADE"),
              nullable=True, index=True),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("title", sa.String(200), nullable=True),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("words", sa.Integer, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.UniqueConstraint("persona_id", "position", name="uq_writing_samples_position"),
)

# What matters to trust, appended and never changed: who did what, to what, from where.
audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", Timestamp, nullable=False, index=True),
    # No foreign key: the record outlives the user (names are kept as they were).
    sa.Column("actor_id", sa.String(64), nullable=True, index=True),
    sa.Column("actor_name", sa.String(100), nullable=True),
    sa.Column("action", sa.String(64), nullable=False, index=True),
    sa.Column("target_type", sa.String(32), nullable=False),
    sa.Column("target_id", sa.String(200), nullable=True, index=True),
    sa.Column("summary", sa.JSON, nullable=False, default=dict),
    sa.Column("client", sa.String(200), nullable=True),  # address, or "cli"
    sa.Column("request_id", sa.String(128), nullable=True),
)

# Thumbs up or down on one reply, by the session's owner; one per message (re-rating
# replaces it), counted per persona version.
message_ratings = sa.Table(
    "message_ratings",
    metadata,
    sa.Column("message_id", sa.Integer, sa.ForeignKey("messages.id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("session_id", sa.String(32), sa.ForeignKey("sessions.id", ondelete="CASCADE"),
              nullable=False, index=True),
    sa.Column("user_id", sa.String(64), nullable=False),
    sa.Column("persona_id", sa.String(64), nullable=False),
    sa.Column("persona_version", sa.Integer, nullable=False),
    sa.Column("rating", sa.SmallInteger, nullable=False),  # 1 up, -1 down
    sa.Column("note", sa.Text, nullable=True),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
)
sa.Index("ix_message_ratings_persona", message_ratings.c.persona_id,
         message_ratings.c.persona_version)
