"""The layer store: content-addressed sandbox images (DESIGN §2)."""
