"""The application layer: the workflows that act (delivery through connectors, the retry
worker, PagerDuty resolve, provider drills, audit checkpoints, the demo story). They call
``store`` services and the connector port (``workflows.connectors``), nothing else.

Imports ``store``; never ``scheduler``, ``cavra_tui`` or ``textual`` (SPEC §2).
"""
