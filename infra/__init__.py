"""Local infrastructure: a real Kafka broker and PostgreSQL server, started by the project."""
