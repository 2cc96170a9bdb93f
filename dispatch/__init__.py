"""Domain logic: no Kafka, websocket or database drivers."""
