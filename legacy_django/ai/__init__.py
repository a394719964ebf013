"""JSON endpoints over legacy.ai: summaries, keywords and related articles."""
