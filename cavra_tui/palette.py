"""The command palette (ctrl+p): every console action and screen, searchable by name."""

from __future__ import annotations

from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider

# (title, what it does, the app action it runs)
PALETTE_ACTIONS: tuple[tuple[str, str, str], ...] = (
    ("Build escalation plan", "from open recovery items and failed retries", "build_plan"),
    ("Deliver escalation plan", "the highlighted plan: shows what goes where, then asks",
     "deliver_plan"),
    ("Acknowledge", "record an acknowledgement for a plan and provider", "acknowledge"),
    ("Build retry plan", "retry / wait / suppress per failed pair", "retry_plan"),
    ("Retry worker: dry-run", "record what a live run would send; sends nothing",
     "dry_run"),
    ("Retry worker: live run", "dry-run preview first, then confirm (release manager)",
     "live_run"),
    ("Executive report: schedule run", "build a report for the last 24 hours",
     "schedule_run"),
    ("Executive report: deliver", "the highlighted schedule run: shows where, then asks",
     "deliver_report"),
    ("Executive re-send: dry-run", "what re-sending failed executive deliveries would send",
     "report_retry_dry_run"),
    ("Executive re-send: live", "dry-run preview first, then confirm (operator)",
     "report_retry_live"),
    ("Add schedule", "report or retry-worker, cron or interval (release manager)",
     "add_schedule"),
    ("Enable / disable schedule", "the highlighted schedule on the Executive screen",
     "toggle_schedule"),
    ("Verify audit", "the hash chain, the evidence behind it and the local witness files",
     "verify_audit"),
    ("Audit checkpoint", "sign the chain head and send it to the audit witnesses",
     "checkpoint"),
    ("Show evidence", "the evidence chain of the highlighted execution or delivery",
     "show_evidence"),
    ("Go to Dashboard", "screen 1", "switch_mode('dashboard')"),
    ("Go to Escalations", "screen 2", "switch_mode('escalations')"),
    ("Go to Acknowledgements", "screen 3", "switch_mode('acknowledgements')"),
    ("Go to Retry runs", "screen 4", "switch_mode('retry_runs')"),
    ("Go to Executive deliveries", "screen 5", "switch_mode('executive')"),
    ("Go to Audit", "screen 6", "switch_mode('audit')"),
    ("Go to Health", "screen 7: every alert and its figures", "switch_mode('health')"),
    ("Help", "every key the console answers to", "help"),
)


class CavraCommands(Provider):
    def _actions(self) -> list[tuple[str, str, str]]:
        """What this session may run (a read-only session lists no write actions)."""
        allows = getattr(self.app, "allows", None)
        return [entry for entry in PALETTE_ACTIONS if allows is None or allows(entry[2])]

    async def discover(self) -> Hits:
        for title, help_text, action in self._actions():
            yield DiscoveryHit(title, partial(self.app.run_action, action), help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, action in self._actions():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), partial(self.app.run_action, action),
                          help=help_text)
