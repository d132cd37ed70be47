"""File formats read and written by avloc (NumPy only: no torch below this package)."""
