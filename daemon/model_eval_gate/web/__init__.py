"""`model-eval-gate web`: the read-only web application (pages, server-drawn plots, JSON twins)."""
