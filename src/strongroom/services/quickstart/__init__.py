"""``strongroom quickstart``: the embedded default set up and proven end to end on sample data."""
