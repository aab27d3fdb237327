"""Analytics events: validation, normalization and the micro-batching writer."""
