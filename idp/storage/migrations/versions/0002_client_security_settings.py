"""Client security settings: profile, PAR / signed request objects / DPoP required, resource server.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 12:00:00

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_FLAGS = (
    "require_pushed_authorization_requests",
    "require_signed_request_object",
    "dpop_bound_access_tokens",
    "resource_server",
)


def upgrade() -> None:
    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.add_column(sa.Column("profile", sa.String(length=16), nullable=True))
        for name in _FLAGS:
            batch_op.add_column(
                sa.Column(name, sa.Boolean(), server_default=sa.false(), nullable=False)
            )


def downgrade() -> None:
    with op.batch_alter_table("clients", schema=None) as batch_op:
        for name in reversed(_FLAGS):
            batch_op.drop_column(name)
        batch_op.drop_column("profile")
