"""One module per schema revision, applied in order on every open."""
