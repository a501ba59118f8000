"""Scaling out on existing engines: Lightning's DDP/FSDP ranks, torchrun and Slurm environments.

- ``environment``: a job started N times by torchrun or srun shares one run directory.
- ``processes``: child ranks Lightning starts run this job's resolved config (no Hydra).
- ``ranks``: rank 0 writes the run directory; ranks step in lockstep; a clean finish.
- ``sharded``: ``trainer=fsdp_cpu``, Lightning's FSDP strategy made to shard on CPU processes.
"""
