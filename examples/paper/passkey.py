#!/usr/bin/env python3
"""Retrieval: passkey accuracy by length and depth of models trained on a passkey mix: softmax, LSSA, LSSAR (LSSA re-weighted with p = 15 after training) and re-weighted softmax.

Usage: passkey.py --scale ci|cpu|gpu|paper [--out DIR] [--seeds 1,2] [--dry-run]
(common.py: runs, records, resuming; paper_values.json: the rows and the paper's numbers)."""
import common

if __name__ == "__main__":
    common.experiment_main("passkey", __doc__)
