"""snnsearch/sweep."""
