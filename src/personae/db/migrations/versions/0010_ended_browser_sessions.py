"""dashboard sign-out per browser: the sessions signed out one by one

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-08 10:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ended_browser_sessions",
        sa.Column("session_id", sa.String(length=64), nullable=False),
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["key_id"], ["api_keys.id"],
                                name=op.f("fk_ended_browser_sessions_key_id_api_keys"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("session_id", name=op.f("pk_ended_browser_sessions")),
    )
    op.create_index(op.f("ix_ended_browser_sessions_expires_at"), "ended_browser_sessions",
                    ["expires_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_ended_browser_sessions_expires_at"),
                  table_name="ended_browser_sessions")
    op.drop_table("ended_browser_sessions")
