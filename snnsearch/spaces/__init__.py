"""snnsearch/spaces."""
