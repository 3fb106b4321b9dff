"""`make bench`: the ledger measured against PostgreSQL's own limits on this machine.

Run with `python -m bench` (see bench/config.py for what is measured and for how long).
Every figure is a ratio to a baseline measured in the same run, so it does not drift with
the load on the machine the way absolute times do.
"""
