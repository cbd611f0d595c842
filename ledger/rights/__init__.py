"""Data-subject rights: receipts and exports, retention, decisions at a point in time."""
