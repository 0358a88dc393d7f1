"""snnsearch/tracking."""
