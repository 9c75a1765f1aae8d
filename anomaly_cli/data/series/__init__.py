"""The pieces of `dataset=timeseries` (see anomaly_cli/data/timeseries.py), one job each:
`reading` (CSV rows in time order), `labels` (anomaly flag per point), `columns`
(which columns form the series), `gaps` (empty cells), `parts` (time-ordered
train / val / test and what each needs), `windows` (sliding windows, pure) and
`report` (per-point scores and data.json)."""
