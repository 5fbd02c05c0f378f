"""The detector: turns ``vpa.events`` into the Cases tab (DESIGN.md 2.1)."""
