"""One module per verb: a plain task function plus its `@hydra.main` wrapper."""
