"""The `kerascnn` command line: one thin Click command per library call."""
