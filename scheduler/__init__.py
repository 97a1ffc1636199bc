"""When things run: APScheduler jobs, triggers, the leader lease and the runner. What a job
does lives in ``workflows``; this package only decides when, and on which process.

Imports ``workflows`` and ``store``; never ``cavra_tui`` or ``textual`` (SPEC §2).
"""
