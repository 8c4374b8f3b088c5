"""A benchmark matrix: many models on many targets, run here or across a Ray cluster.

    suite.yaml ──load──▶ Suite ──expand──▶ cells (+ dropped, each with its reason)
                                              │
                     executor: local (this process) or ray (devices as custom resources)
                                              │ each cell: bench() ──▶ report ──▶ registry
                                              ▼
                                  progress by target; compare table at the end

`suite.py` reads and checks the suite file, `matrix.py` expands it,
`devices.py` says which device a node offers, `cell.py` runs one cell
wherever it lands, `executors.py` runs cells here or on Ray, and `run.py`
drives them (retries, resume, the end table). Nothing here imports Ray,
TensorFlow or MLflow until it is needed.
"""
