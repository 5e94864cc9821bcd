"""Small helpers every part may use: atomic writes, SavedModel folders, quiet native logs."""
