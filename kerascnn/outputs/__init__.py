"""Writing: atomic files (store), our own output folders (folders), locks, and documents."""
