#!/usr/bin/env python3
"""Table 2: softmax decomposed, scenarios I-IV: with and without exp, with and without the l1-norm (loss at the training length).

Usage: table2.py --scale ci|cpu|gpu|paper [--out DIR] [--seeds 1,2] [--dry-run]
(common.py: runs, records, resuming; paper_values.json: the rows and the paper's numbers)."""
import common

if __name__ == "__main__":
    common.experiment_main("table2", __doc__)
