#!/usr/bin/env python3
"""Table 1: is non-negativity needed? Softmax, its negation, re-centred, re-centred and l1-normalised (loss at the training length).

Usage: table1.py --scale ci|cpu|gpu|paper [--out DIR] [--seeds 1,2] [--dry-run]
(common.py: runs, records, resuming; paper_values.json: the rows and the paper's numbers)."""
import common

if __name__ == "__main__":
    common.experiment_main("table1", __doc__)
