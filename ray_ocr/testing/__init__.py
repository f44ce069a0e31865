"""Lightweight stand-ins for scheduling and scale tests (no Paddle, no models)."""
