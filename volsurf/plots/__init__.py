"""Charts (matplotlib, drawing only)."""
