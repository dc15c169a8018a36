"""unconfirmed incidents: one opened by a lone warning waits for its card (knowledge.noise)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 09:50:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import knowledge.types

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('incident', schema=None) as batch_op:
        batch_op.add_column(sa.Column('unconfirmed_until', knowledge.types.UTCDateTime(),
                                      nullable=True))
        # The sweep reads the few that are due.
        batch_op.create_index('ix_incident_unconfirmed', ['unconfirmed_until'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('incident', schema=None) as batch_op:
        batch_op.drop_index('ix_incident_unconfirmed')
        batch_op.drop_column('unconfirmed_until')
