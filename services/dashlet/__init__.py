"""The dashlet: HTTP API and web page over the dashlet store (DESIGN.md 4.8)."""
