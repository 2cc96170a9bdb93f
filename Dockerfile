# The project's own services, for docker-compose.yml: one image, and each service there runs
# its own module (`python -m streams`, `consumers.intake`, `consumers.push`). Kafka and
# PostgreSQL come from their own images, so this image needs neither Java nor Maven.
# The pages (web/, docs/pages.md), built from the lockfile in a stage of their own.
FROM node:20-slim AS pages
WORKDIR /web
COPY web/package.json web/package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY web/tsconfig.json web/build.mjs ./
COPY web/src ./src
RUN npm run build

FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md constraints.txt ./
COPY dispatch ./dispatch
COPY streams ./streams
COPY consumers ./consumers
COPY infra ./infra
COPY cli ./cli
COPY simulator ./simulator
RUN pip install --no-cache-dir -c constraints.txt . && useradd --system dispatch \
    && mkdir -p /var/lib/dispatch && chown dispatch /var/lib/dispatch
COPY --from=pages /web/dist /app/web/dist
ENV DISPATCH_PAGES_DIR=/app/web/dist
USER dispatch
# Alone (docker run), all three services in one container, on the servers that
# DISPATCH_KAFKA_BOOTSTRAP and DISPATCH_POSTGRES_URL name.
CMD ["dispatch", "run", "--keep-infra"]
