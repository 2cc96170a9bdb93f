"""Side services: the websocket gateway, the Postgres sink."""
