# The project's own services, for docker-compose.yml. Kafka and PostgreSQL come from their
# own images there, so this image needs neither Java nor Maven.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md constraints.txt ./
COPY dispatch ./dispatch
COPY streams ./streams
COPY consumers ./consumers
COPY infra ./infra
COPY cli ./cli
RUN pip install --no-cache-dir -c constraints.txt . && useradd --system dispatch \
    && mkdir -p /var/lib/dispatch && chown dispatch /var/lib/dispatch
USER dispatch
CMD ["dispatch", "run", "--keep-infra"]
