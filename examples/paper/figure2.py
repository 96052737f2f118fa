#!/usr/bin/env python3
"""Figure 2: the p ablation: softmax and LSSA re-weighted after training with each p, and gradient norms of runs trained with the re-weighting.

Usage: figure2.py --scale ci|cpu|gpu|paper [--out DIR] [--seeds 1,2] [--dry-run]
(common.py: runs, records, resuming; paper_values.json: the rows and the paper's numbers)."""
import common

if __name__ == "__main__":
    common.experiment_main("figure2", __doc__)
