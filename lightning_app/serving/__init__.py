"""Serving: the HTTP app, batching, guard, launch, settings, request decoding, offline predict I/O."""
