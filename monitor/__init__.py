"""Travel-advisory change monitor: poll, snapshot, diff, classify, alert."""
