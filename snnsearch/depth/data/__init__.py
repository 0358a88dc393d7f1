"""snnsearch/depth/data."""
