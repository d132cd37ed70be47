"""Training objectives of every method (registered in avloc.catalog)."""
