#!/usr/bin/env python3
"""Figure 1: loss against evaluation length up to 16x for softmax, LSSA and LSSAR (same-tokens protocol, loss by position too).

Usage: figure1.py --scale ci|cpu|gpu|paper [--out DIR] [--seeds 1,2] [--dry-run]
(common.py: runs, records, resuming; paper_values.json: the rows and the paper's numbers)."""
import common

if __name__ == "__main__":
    common.experiment_main("figure1", __doc__)
