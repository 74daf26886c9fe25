"""Task recipes (data + training + evaluation) used by the CLI and the app."""
