"""`make demo`: the whole pipeline end to end on sample data, against local services."""
