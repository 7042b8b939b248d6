"""Leases on rows in flight, per-account turns shared by daemons, and unbounded texts.

Revision ID: 0003
Revises: 0002

``lease_until``: a daemon renews the lease of the rows it has in flight; a row
whose lease ran out belongs to a daemon that is gone, and another settles it.
``paces``: when each account may post next, whichever daemon sends (an account's
``pace`` and a platform's rate limit hold for every daemon on the ledger).
Keys and remote ids become unbounded text on PostgreSQL (SQLite never bounded them).
Indexes keep claiming, ``status`` and ``history`` fast however long the ledger grows.
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("lease_until", sa.DateTime(), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column("deliveries", "key", type_=sa.Text(), existing_nullable=False)
        op.alter_column("deliveries", "remote_id", type_=sa.Text(), existing_nullable=True)
    # a ledger grows forever: `status` and `history`'s pages read by index at a million rows
    op.create_index(
        "ix_deliveries_campaign_status",
        "deliveries",
        ["campaign", "status", "scheduled_for", "id"],
    )
    op.create_index("ix_deliveries_scheduled_id", "deliveries", ["scheduled_for", "id"])
    op.create_index(
        "ix_deliveries_campaign_time", "deliveries", ["campaign", "scheduled_for", "id"]
    )
    op.create_index("ix_deliveries_status_time", "deliveries", ["status", "scheduled_for", "id"])
    # each the first columns of one above: work on every claim, and no query needs them
    for single in ("campaign", "scheduled_for", "status"):
        op.drop_index(f"ix_deliveries_{single}", table_name="deliveries")
    op.create_table(
        "paces",
        sa.Column("account", sa.String(200), primary_key=True),
        sa.Column("next_at", sa.DateTime(), nullable=False),
        sa.Column("owner", sa.String(200), nullable=True),
        sa.Column("why", sa.Text(), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("paces")
    for single in ("campaign", "scheduled_for", "status"):
        op.create_index(f"ix_deliveries_{single}", "deliveries", [single])
    op.drop_index("ix_deliveries_status_time", table_name="deliveries")
    op.drop_index("ix_deliveries_campaign_time", table_name="deliveries")
    op.drop_index("ix_deliveries_scheduled_id", table_name="deliveries")
    op.drop_index("ix_deliveries_campaign_status", table_name="deliveries")
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("lease_until")
