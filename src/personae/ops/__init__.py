"""Operations: rate limits, metrics, health, structured logs and the audit log.

Used by the edges (API, CLI, workers) and configured by Settings; nothing here imports
FastAPI or the runtime.
"""
