"""Score and loss names that more than one layer needs, without NumPy or TensorFlow
(the config checks run before anything heavy is imported)."""

# Structure-aware kinds (docs/scores.md): they compare image neighbourhoods, and
# their stabilising constants are set for images in [0, 1].
STRUCTURAL_KINDS = ("ssim", "ms_ssim", "gradient", "mse_ssim", "mse_gradient")

# Models whose inputs must lie in [0, 1]: PaDiM and PatchCore feed x * 255 to the
# backbone's own preprocessing, DRAEM's SSIM and texture bank assume that range.
UNIT_RANGE_MODELS = ("padim", "patchcore", "draem")
