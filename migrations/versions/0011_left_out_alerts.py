"""left-out alerts: a firing Alertmanager's notification stops listing (muted, or ended muted)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 21:30:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import knowledge.types

revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('alert', schema=None) as batch_op:
        batch_op.add_column(sa.Column('left_out_at', knowledge.types.UTCDateTime(),
                                      nullable=True))
        # A notification's listing reads its group's firing alerts, and the left-out ones.
        batch_op.create_index('ix_alert_status', ['org_id', 'status'], unique=False)
        batch_op.create_index('ix_alert_left_out', ['left_out_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('alert', schema=None) as batch_op:
        batch_op.drop_index('ix_alert_left_out')
        batch_op.drop_index('ix_alert_status')
        batch_op.drop_column('left_out_at')
