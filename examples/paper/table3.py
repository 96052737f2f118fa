#!/usr/bin/env python3
"""Table 3: l1norm(phi(s)) for every activation phi of the paper (loss at the training length).

Usage: table3.py --scale ci|cpu|gpu|paper [--out DIR] [--seeds 1,2] [--dry-run]
(common.py: runs, records, resuming; paper_values.json: the rows and the paper's numbers)."""
import common

if __name__ == "__main__":
    common.experiment_main("table3", __doc__)
