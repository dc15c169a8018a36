"""teams digest channel (`@SRE Copilot digest here`)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 01:40:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import knowledge.types

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('teams_channel', schema=None) as batch_op:
        batch_op.add_column(sa.Column('digest_since', knowledge.types.UTCDateTime(timezone=True),
                                      nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('teams_channel', schema=None) as batch_op:
        batch_op.drop_column('digest_since')
