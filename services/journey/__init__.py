"""The journey service (DESIGN.md 2.2 / 2.3)."""
