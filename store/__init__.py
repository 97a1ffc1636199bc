"""What is decided and recorded: models, pure rules, tables, migrations and services.

Never imports ``scheduler``, ``cavra_tui`` or ``textual`` (SPEC §2).
"""
