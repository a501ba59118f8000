"""Data stage: sources read raw arrays, preprocessing is fitted on the training split only."""
