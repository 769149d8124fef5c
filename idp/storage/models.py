"""Every model, imported in one place so that the metadata (and Alembic) sees all tables."""

from __future__ import annotations

from idp.storage.audit import Release
from idp.storage.base import Base
from idp.storage.clients import Client
from idp.storage.consents import Consent
from idp.storage.keys import SigningKey
from idp.storage.residents import CardCredential, Resident

__all__ = ["Base", "CardCredential", "Client", "Consent", "Release", "Resident", "SigningKey"]
