"""turnout runtime: the data plane, its configuration and the command line."""
