"""`adx predict`: a trained run applied to new, unlabelled data.

`source` finds the run and checks the input against it (no TensorFlow, so
`adx` runs it before Hydra makes a folder); `inputs` streams the input in
batches through the run's own preprocessing or fitted transform; `writer`
writes predictions.csv, unreadable.csv and the heatmap overlays.
"""
