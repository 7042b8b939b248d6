"""Add the holds table (what a person or a file problem stops) and the send guard's index.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "holds",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("scope", sa.String(800), nullable=False, unique=True),
        sa.Column("campaign", sa.String(200), nullable=True),
        sa.Column("post", sa.String(200), nullable=True),
        sa.Column("person", sa.String(200), nullable=True),
        sa.Column("account", sa.String(200), nullable=True),
        sa.Column("why", sa.Text(), nullable=False),
        sa.Column("since", sa.DateTime(), nullable=False),
        sa.Column("source", sa.String(600), nullable=False),
    )
    # `send` asks whether a post went to an account in the last 24 hours
    op.create_index(
        "ix_deliveries_recent",
        "deliveries",
        ["campaign", "post", "account", "status", "sent_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_deliveries_recent", table_name="deliveries")
    op.drop_table("holds")
