"""turn leases and streaming replies

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 10:00:00.000000
"""

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# Claims taken before leases existed keep the ten minutes they were given then.
LEGACY_CLAIM = timedelta(minutes=10)


def upgrade() -> None:

    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("turn_expires_at", sa.DateTime(timezone=True),
                                      nullable=True))
        batch_op.add_column(sa.Column("turn_holder", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("turn_node", sa.String(length=200), nullable=True))
    sessions = sa.table("sessions", sa.column("turn_id", sa.String()),
                        sa.column("turn_expires_at", sa.DateTime(timezone=True)))
    op.execute(sessions.update().where(sessions.c.turn_id.is_not(None))
               .values(turn_expires_at=datetime.now(UTC) + LEGACY_CLAIM))
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.create_index("ix_sessions_claimed", ["turn_expires_at"], unique=False,
                              postgresql_where=sa.text("turn_id IS NOT NULL"),
                              sqlite_where=sa.text("turn_id IS NOT NULL"))
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.create_index("ix_messages_streaming", ["session_id"], unique=False,
                              postgresql_where=sa.text("status = 'streaming'"),
                              sqlite_where=sa.text("status = 'streaming'"))


def downgrade() -> None:

    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index("ix_messages_streaming")
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.drop_index("ix_sessions_claimed")
        batch_op.drop_column("turn_node")
        batch_op.drop_column("turn_holder")
        batch_op.drop_column("turn_expires_at")
