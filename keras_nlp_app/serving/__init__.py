"""`knlp serve`: the TF Serving REST API over exported SavedModels (see serving/app.py)."""
