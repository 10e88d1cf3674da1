"""Small shared utilities (atomic file writes, stable hashing)."""
