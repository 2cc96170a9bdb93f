"""The PostgreSQL schema of the side services and the runner that brings a database up to it."""

from consumers.db.migrate import Migration, MigrationError, load_migrations, migrate

__all__ = ["Migration", "MigrationError", "load_migrations", "migrate"]
