"""Where work runs: parity shards and search trials, in this process, local workers or on Ray."""
