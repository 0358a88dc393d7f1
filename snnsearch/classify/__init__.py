"""snnsearch/classify."""
