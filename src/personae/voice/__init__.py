"""Voice: audio in and out around ordinary conversation turns (no HTTP inside)."""
