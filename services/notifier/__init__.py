"""The notifier: the only writer of the dashlet task store (DESIGN.md 3 "Store")."""
