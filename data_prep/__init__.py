"""Dataset preparation: official raw files -> one manifest format, and the Dataset over it."""
