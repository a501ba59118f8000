"""Training helpers: callbacks, checkpoint I/O, monitor resolution, checkpoint loading."""
