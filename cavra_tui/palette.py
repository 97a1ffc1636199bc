"""The command palette (ctrl+p): every console action with a palette title in the registry
(cavra_tui/actions.py), searchable by name. An action of another screen goes to that
screen first, so it acts on what is highlighted there."""

from __future__ import annotations

from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider

from cavra_tui.actions import ACTIONS, ConsoleAction


class CavraCommands(Provider):
    def _actions(self) -> list[ConsoleAction]:
        """What this session may run (a read-only session lists no write actions)."""
        allows = getattr(self.app, "allows", None)
        return [entry for entry in ACTIONS
                if entry.title and (allows is None or allows(entry.name))]

    def _run(self, entry: ConsoleAction) -> None:
        run = getattr(self.app, "run_registered", None)
        if run is not None:
            run(entry)
        else:
            self.app.call_later(self.app.run_action, entry.runs)

    async def discover(self) -> Hits:
        for entry in self._actions():
            yield DiscoveryHit(entry.title, partial(self._run, entry), help=entry.help)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for entry in self._actions():
            score = matcher.match(entry.title)
            if score > 0:
                yield Hit(score, matcher.highlight(entry.title), partial(self._run, entry),
                          help=entry.help)
