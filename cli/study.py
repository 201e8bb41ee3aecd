"""Commands that run whole studies: compare, report."""
COMMANDS = []
