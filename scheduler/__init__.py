"""What runs: delivery through connectors, the retry worker, APScheduler jobs, the leader lease.

Imports ``store``; never ``cavra_tui`` or ``textual`` (SPEC §2).
"""
