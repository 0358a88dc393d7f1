"""snnsearch/depth/models."""
