"""Tasks: what was asked, what ran, and what came back."""
