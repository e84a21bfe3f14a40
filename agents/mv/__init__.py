"""The music-video producer (`kantoku mv`, `plan`, `resume`)."""
