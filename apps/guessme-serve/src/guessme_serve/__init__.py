"""Guessme serving: a Ray Serve application with a FastAPI ingress (REST + WebSocket)."""
