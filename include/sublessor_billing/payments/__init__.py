"""The money path: charge every valid call exactly once, take dry sublessors' listings offline."""
