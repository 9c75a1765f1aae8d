"""Tables (tabulate) and plots (matplotlib) written into run directories."""
