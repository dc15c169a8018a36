"""correlation and noise: incidents across Alertmanager groups (why, shared subjects, noise,
merges), held alerts, heartbeats for the dead man's switch

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 07:30:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import knowledge.types

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('incident', schema=None) as batch_op:
        # An Alertmanager group may now hold several incidents (and one incident several
        # groups): the intake places each alert by what it shares with open incidents.
        batch_op.drop_index('uq_incident_open_group',
                            postgresql_where=sa.text("status <> 'resolved'"),
                            sqlite_where=sa.text("status <> 'resolved'"))
        batch_op.add_column(sa.Column('reason', sa.String(length=2000), nullable=True))
        batch_op.add_column(sa.Column('related', sa.JSON(), nullable=False,
                                      server_default='{}'))
        batch_op.add_column(sa.Column('last_alert_at', knowledge.types.UTCDateTime(),
                                      nullable=True))
        batch_op.add_column(sa.Column('noise', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
        batch_op.add_column(sa.Column('merged_into_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key('fk_incident_merged_into', 'incident', ['merged_into_id'],
                                    ['id'])
        batch_op.create_index('ix_incident_org_last_alert', ['org_id', 'last_alert_at'],
                              unique=False)
    with op.batch_alter_table('alert', schema=None) as batch_op:
        batch_op.add_column(sa.Column('held_until', knowledge.types.UTCDateTime(),
                                      nullable=True))
        batch_op.add_column(sa.Column('noise', sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column('noise_key', sa.String(length=64), nullable=True))
        batch_op.create_index('ix_alert_held', ['held_until'], unique=False)
        batch_op.create_index('ix_alert_noise_key', ['org_id', 'noise_key', 'starts_at'],
                              unique=False)
    op.create_table(
        'heartbeat',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('org_id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('last_seen_at', knowledge.types.UTCDateTime(), nullable=False),
        sa.Column('interval_s', sa.Float(), nullable=True),
        sa.Column('silent_incident_id', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['org_id'], ['org.id']),
        sa.ForeignKeyConstraint(['silent_incident_id'], ['incident.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('org_id', 'name'),
    )
    with op.batch_alter_table('heartbeat', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_heartbeat_org_id'), ['org_id'], unique=False)
    # Incidents from before: their latest alert started when they did.
    op.execute("UPDATE incident SET last_alert_at = triggered_at WHERE last_alert_at IS NULL")


def downgrade() -> None:
    with op.batch_alter_table('heartbeat', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_heartbeat_org_id'))
    op.drop_table('heartbeat')
    with op.batch_alter_table('alert', schema=None) as batch_op:
        batch_op.drop_index('ix_alert_noise_key')
        batch_op.drop_index('ix_alert_held')
        batch_op.drop_column('noise_key')
        batch_op.drop_column('noise')
        batch_op.drop_column('held_until')
    with op.batch_alter_table('incident', schema=None) as batch_op:
        batch_op.drop_index('ix_incident_org_last_alert')
        batch_op.drop_constraint('fk_incident_merged_into', type_='foreignkey')
        batch_op.drop_column('merged_into_id')
        batch_op.drop_column('noise')
        batch_op.drop_column('last_alert_at')
        batch_op.drop_column('related')
        batch_op.drop_column('reason')
        batch_op.create_index('uq_incident_open_group', ['org_id', 'group_key_hash'],
                              unique=True, postgresql_where=sa.text("status <> 'resolved'"),
                              sqlite_where=sa.text("status <> 'resolved'"))
