"""org credentials: each org's own webhook tokens (hashed), PagerDuty secrets and digest channel

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 02:30:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('org', schema=None) as batch_op:
        batch_op.add_column(sa.Column('alertmanager_token_sha256', sa.String(length=64),
                                      nullable=True))
        batch_op.add_column(sa.Column('changes_token_sha256', sa.String(length=64),
                                      nullable=True))
        batch_op.add_column(sa.Column('pagerduty_secrets', sa.JSON(), nullable=False,
                                      server_default='[]'))
        batch_op.add_column(sa.Column('digest_slack_channel', sa.String(length=256),
                                      nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('org', schema=None) as batch_op:
        batch_op.drop_column('digest_slack_channel')
        batch_op.drop_column('pagerduty_secrets')
        batch_op.drop_column('changes_token_sha256')
        batch_op.drop_column('alertmanager_token_sha256')
