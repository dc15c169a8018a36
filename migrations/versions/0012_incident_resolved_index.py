"""incidents by resolution time: the intake offers those resolved within the lasting reach
(a CronJob's next run failing reopens its incident)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 23:50:00
"""
from collections.abc import Sequence

from alembic import op

revision: str = '0012'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('incident', schema=None) as batch_op:
        batch_op.create_index('ix_incident_org_resolved', ['org_id', 'resolved_at'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('incident', schema=None) as batch_op:
        batch_op.drop_index('ix_incident_org_resolved')
