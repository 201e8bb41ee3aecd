"""Export for other runtimes: the exporter, how each format is written, and the consumers that check it."""
