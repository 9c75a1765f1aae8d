"""`adx tune`: hyperparameter search (Keras Tuner) and seed 002's batch-size search.

`space` reads and checks `tune.*` without TensorFlow (preflight runs it);
`trials` runs one trial, an ordinary `adx train` run, and records it;
`objective` measures a finished trial on the validation split; `search`
drives Keras Tuner's oracles; `batch_size` is seed 002's Algorithm 1;
`results` writes trials.csv, the table and best_params.yaml.
"""
