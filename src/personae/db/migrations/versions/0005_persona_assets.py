"""persona assets (avatars and card files)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 10:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "persona_assets",
        sa.Column("persona_id", sa.String(length=64), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("media_type", sa.String(length=100), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["persona_id"], ["personas.id"],
                                name=op.f("fk_persona_assets_persona_id_personas"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("persona_id", "sha256", name=op.f("pk_persona_assets")),
    )


def downgrade() -> None:

    op.drop_table("persona_assets")
