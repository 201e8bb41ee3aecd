"""Studies over seeds: their statistics, the verdict, and the worker processes that run them."""
