"""Renders the demo executive email's HTML part to ``screenshots/executive-email.png``.

    .venv/bin/python screenshots/render_email.py [--out PATH] [--html PATH]

The demo story is seeded in a temporary folder with a frozen clock (as for the console
screenshots), a run of the demo's ``exec-morning`` schedule (Europe/Berlin) is built, and the
email a provider of kind ``email`` would send is drawn by headless Chromium (``chromium`` or
``chromium-browser`` on PATH; ``apt-get install chromium`` on Debian). Without Chromium the
HTML is still written (``--html``) and the script exits 1.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cavra_tui.bootstrap import build_runtime  # noqa: E402
from cavra_tui.screenshots import DEMO_NOW, DEMO_USER  # noqa: E402
from store.clock import fixed_clock  # noqa: E402
from store.rules.messages import report_message  # noqa: E402
from store.services.reports import create_schedule_run  # noqa: E402
from store.services.schedules import get_schedule  # noqa: E402
from workflows.connectors.base import OutboundMessage  # noqa: E402
from workflows.connectors.email import build_email  # noqa: E402
from workflows.demo import seed_demo_data  # noqa: E402

log = logging.getLogger("render_email")
WINDOW = "900,800"


def demo_email_html(folder: Path) -> str:
    os.environ["CAVRA_DATA_DIR"] = str(folder)
    runtime = build_runtime(db_url=f"sqlite:///{folder / 'demo.db'}",
                            clock=fixed_clock(DEMO_NOW), user=DEMO_USER)
    try:
        seed_demo_data(runtime.ctx, runtime.registry)
        schedule_id = get_schedule(runtime.ctx, "exec-morning").schedule_id
        run, report, _ = create_schedule_run(runtime.ctx, schedule_id, scheduled_for=DEMO_NOW,
                                             trigger="schedule")
        key = f"cavra:{run.run_id}:exec-mail:1"
        mail = build_email(OutboundMessage(
            delivery_id="dlv-demo0email", kind="executive", provider="exec-mail",
            idempotency_key=key, plan_id=None, schedule_run_id=run.run_id, attempt=1,
            message=report_message(run, report, "exec-mail", 1)),
            "cavra@example.test", ["leadership@example.test"])
    finally:
        runtime.close()
    part = mail.get_body(("html",))
    assert part is not None
    return str(part.get_content())


def chromium() -> str | None:
    return next((found for name in ("chromium", "chromium-browser", "google-chrome")
                 if (found := shutil.which(name))), None)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "screenshots" / "executive-email.png")
    parser.add_argument("--html", type=Path, help="also keep the HTML part here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="cavra-email-") as temp:
        folder = Path(temp)
        page = folder / "executive-email.html"
        page.write_text(demo_email_html(folder), encoding="utf-8")
        if args.html:
            shutil.copyfile(page, args.html)
            log.info("wrote %s", args.html)
        browser = chromium()
        if browser is None:
            log.error("no chromium on PATH: cannot draw %s", args.out)
            return 1
        args.out.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu",
                        "--hide-scrollbars", "--force-device-scale-factor=1",
                        f"--user-data-dir={folder / 'profile'}", f"--window-size={WINDOW}",
                        f"--screenshot={args.out.resolve()}", page.as_uri()],
                       check=True, capture_output=True, timeout=120)
    log.info("wrote %s", args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
