"""snnsearch/snn."""
