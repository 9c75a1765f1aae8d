"""`adx benchmark`: a resumable grid of train runs and its tables (seed 001's protocol)."""
