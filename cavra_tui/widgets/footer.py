"""The key bar at the bottom of every screen: Textual's Footer, built with its screen and
rebuilt only when the keys it shows change."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.widgets import Footer
from textual.widgets._footer import FooterKey


class ConsoleFooter(Footer):
    """Textual's Footer starts empty and makes its keys once the screen first says its
    bindings changed, after the screen's first layout: the new keys then cost a layout of
    their own and one more frame. It makes them again on every later change (each focus
    move, each time the screen is shown again), usually to the same keys (~10–20 ms, then a
    relayout and a repaint).

    This one makes its keys with the screen, and makes them again only when what it shows
    changed: the shown keys (enabled or not, their tooltips and key names) and the command
    palette's key."""

    _shown: Any = None  # what the keys on show were made from

    def _keys(self) -> Any:
        bindings = self.screen.active_bindings
        palette = (self.show_command_palette and self.app.ENABLE_COMMAND_PALETTE
                   and bindings.get(self.app.COMMAND_PALETTE_BINDING))
        shown = tuple((binding, enabled, tooltip, self.app.get_key_display(binding))
                      for _, binding, enabled, tooltip in bindings.values() if binding.show)
        return (self.combine_groups, self.compact, shown, palette and palette[1:])

    async def recompose(self) -> None:
        if self.is_attached and self._bindings_ready and self._keys() == self._shown:
            return
        await super().recompose()

    def compose(self) -> ComposeResult:
        self.set_reactive(Footer._bindings_ready, True)  # the screen's bindings are there
        self._shown = self._keys()
        for widget in super().compose():
            # A key takes the footer's compact style once mounted, restyling itself (~0.5 ms
            # a key); made with it, it is styled once.
            if isinstance(widget, FooterKey) and self.compact:
                widget.add_class("-compact", update=False)
            yield widget
