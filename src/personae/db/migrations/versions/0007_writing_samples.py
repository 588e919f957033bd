"""writing samples (a writing persona's own texts, private to its owner)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05 10:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "writing_samples",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("persona_id", sa.String(length=64), nullable=False),
        sa.Column("owner_id", sa.String(length=64), nullable=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("words", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["persona_id"], ["personas.id"],
                                name=op.f("fk_writing_samples_persona_id_personas"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"],
                                name=op.f("fk_writing_samples_owner_id_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_writing_samples")),
        sa.UniqueConstraint("persona_id", "position", name="uq_writing_samples_position"),
    )
    op.create_index(op.f("ix_writing_samples_persona_id"), "writing_samples", ["persona_id"])
    op.create_index(op.f("ix_writing_samples_owner_id"), "writing_samples", ["owner_id"])


def downgrade() -> None:

    op.drop_index(op.f("ix_writing_samples_owner_id"), table_name="writing_samples")
    op.drop_index(op.f("ix_writing_samples_persona_id"), table_name="writing_samples")
    op.drop_table("writing_samples")
