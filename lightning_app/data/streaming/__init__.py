"""Sharded tables read block by block (``data.source.streaming=true``): shards, one statistics
pass, per-row splits, and loaders whose readers share no shard."""
