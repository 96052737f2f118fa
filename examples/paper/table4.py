#!/usr/bin/env python3
"""Table 4: softmax, the sigmoid and relu attentions, LSSA, and the re-weighting with p = 3 and 15 after training (and, ours, trained with it): loss at 1x to 16x the training length.

Usage: table4.py --scale ci|cpu|gpu|paper [--out DIR] [--seeds 1,2] [--dry-run]
(common.py: runs, records, resuming; paper_values.json: the rows and the paper's numbers)."""
import common

if __name__ == "__main__":
    common.experiment_main("table4", __doc__)
