"""Music videos: the song's analysis, the lyrics, and the graph steps that use them."""
