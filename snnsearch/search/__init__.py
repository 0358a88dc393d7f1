"""snnsearch/search."""
