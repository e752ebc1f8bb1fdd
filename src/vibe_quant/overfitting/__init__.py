"""Overfitting prevention between screening and validation: DSR, walk-forward, purged K-fold, CPCV, PBO."""
