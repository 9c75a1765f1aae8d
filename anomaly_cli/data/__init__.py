"""Data sources, splits and tf.data pipelines (imports TensorFlow lazily)."""
