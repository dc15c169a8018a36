"""inbox priority: a notification's first firing alert is claimed before the storm behind it

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 13:30:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('inbox_item', schema=None) as batch_op:
        batch_op.add_column(sa.Column('priority', sa.SmallInteger(), nullable=False,
                                      server_default='1'))
        # Claims read pending items by priority, then age: this index returns them sorted.
        batch_op.drop_index('ix_inbox_item_claim')
        batch_op.create_index('ix_inbox_item_claim', ['status', 'priority', 'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('inbox_item', schema=None) as batch_op:
        batch_op.drop_index('ix_inbox_item_claim')
        batch_op.create_index('ix_inbox_item_claim', ['status', 'id'], unique=False)
        batch_op.drop_column('priority')
