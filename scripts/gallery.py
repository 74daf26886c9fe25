"""Page gallery: a full-page screenshot of every page of the app, to look at all of them at once.

    .venv/bin/python scripts/gallery.py [--out artifacts/gallery] [--widths 1280,768]
                                        [--pages home,dashboard] [--no-present] [--timeout 180]

Serves the app itself (``streamlit run app.py`` on a free 127.0.0.1 port, headless, no usage
statistics: the browser tests' :func:`launch_app`), opens every page of ``app_pages.PAGES`` in
Debian's Chromium at each width, waits until its script has finished and its figures are drawn,
and saves ``<out>/<page>-<width>.png`` and, in presentation mode (``?present=1``),
``<out>/<page>-<width>-present.png``; then ``<out>/index.html`` shows them all in a grid.

Exits 1, naming the screenshots, when a page shows a Streamlit exception, an error alert or
"Page not found" (the screenshot is saved anyway, to see it). Each view gets a fresh browser
session; requests to other hosts are blocked. The app's root is opened once before the first
view: a fresh server's first request goes through Streamlit's legacy ``pages/`` shim (see
``app.py``), which ``tests/browser/test_deeplinks.py`` covers; the gallery shows the app as every
later visitor sees it.
"""
from __future__ import annotations

import argparse
import html
import os
import sys
import time
from pathlib import Path
from typing import List, NamedTuple

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "tests" / "browser")]

from playwright.sync_api import Error, Page, expect, sync_playwright  # noqa: E402

import app_pages  # noqa: E402
from conftest import (CHROMIUM_ARGS, DEFAULT_CHROMIUM, OUTSIDE_URL,  # noqa: E402
                      ServerStartError, launch_app, save_screenshot, stop_app, wait_for_script)

#: What counts as a broken page: (description, locator selector).
PROBLEMS = (
    ("a Streamlit exception", '[data-testid="stException"]'),
    ("an error alert", '[data-testid="stAlertContentError"]'),
    ('"Page not found"', 'text="Page not found"'),
)
#: True once every visible Plotly chart has drawn its SVG and every image has loaded.
FIGURES_DRAWN = """() =>
    [...document.querySelectorAll('[data-testid="stPlotlyChart"]')]
        .filter(e => e.checkVisibility())
        .every(e => e.querySelector('.main-svg'))
    && [...document.images].every(i => i.complete)"""


class Shot(NamedTuple):
    page: app_pages.AppPage
    width: int
    present: bool
    path: Path
    seconds: float
    problems: List[str]


def settle(page: Page, timeout_ms: int) -> None:
    """Wait until the page's script has finished (no "Running…" widget, no spinner), its title
    is drawn and its figures are rendered; or until it has shown an exception."""
    wait_for_script(page, timeout_ms, started_within_ms=0)
    title = page.locator('[data-testid="stMain"] h1')
    crashed = page.get_by_test_id("stException")
    expect(title.or_(crashed).first).to_be_visible(timeout=timeout_ms)
    if crashed.count():
        return  # nothing more will be drawn
    expect(page.get_by_test_id("stSpinner")).to_have_count(0, timeout=timeout_ms)
    page.wait_for_function(FIGURES_DRAWN, timeout=timeout_ms)
    page.wait_for_timeout(500)  # a rerun the first run asked for, and chart transitions
    wait_for_script(page, timeout_ms, started_within_ms=0)


def problems_on(page: Page) -> List[str]:
    return [what for what, sel in PROBLEMS if page.locator(sel).count()]


def warm_up(browser, url: str, timeout_ms: int) -> None:
    """Open the app's root once: a fresh server's first request (see the module docstring)."""
    context = browser.new_context()
    context.route(OUTSIDE_URL, lambda route: route.abort("blockedbyclient"))
    page = context.new_page()
    page.goto(url + "/", wait_until="domcontentloaded", timeout=timeout_ms)
    wait_for_script(page, timeout_ms, started_within_ms=0)
    context.close()


def shoot(browser, url: str, ap: app_pages.AppPage, width: int, present: bool, out: Path,
          timeout_ms: int) -> Shot:
    """One view of one page in a fresh browser session."""
    start = time.monotonic()
    name = f"{ap.name}-{width}{'-present' if present else ''}"
    context = browser.new_context(viewport={"width": width, "height": 900}, locale="en-US",
                                  timezone_id="UTC", color_scheme="light",
                                  reduced_motion="reduce")
    context.route(OUTSIDE_URL, lambda route: route.abort("blockedbyclient"))
    page = context.new_page()
    problems: List[str] = []
    try:
        page.goto(f"{url}/{ap.url_path}{'?present=1' if present else ''}",
                  wait_until="domcontentloaded", timeout=timeout_ms)
        settle(page, timeout_ms)
    except (AssertionError, Error) as exc:  # a page that never settles is shown as it is
        problems.append(f"did not finish within {timeout_ms // 1000}s "
                        f"({str(exc).splitlines()[0][:120]})")
    problems += problems_on(page)
    path = out / f"{name}.png"
    if save_screenshot(page, name, quiet=True, path=path) is None:
        problems.append("no screenshot could be taken")
    context.close()
    return Shot(ap, width, present, path, time.monotonic() - start, problems)


def write_index(shots: List[Shot], out: Path) -> Path:
    """``index.html``: every screenshot in a grid, captioned, each linked to the full image."""
    cells = []
    for s in shots:
        caption = (f"{s.page.title} — {s.width}px{' — presentation' if s.present else ''}"
                   f" ({s.seconds:.1f}s)")
        bad = f"<b>FAILED: {html.escape('; '.join(s.problems))}</b><br>" if s.problems else ""
        src = html.escape(s.path.name, quote=True)
        cells.append(f'<figure{" class=bad" if s.problems else ""}><a href="{src}">'
                     f'<img src="{src}" loading="lazy" alt="{html.escape(caption, quote=True)}">'
                     f'</a><figcaption>{bad}{html.escape(caption)}</figcaption></figure>')
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>skimviz page gallery</title>
<style>
body {{font-family: sans-serif; margin: 1rem;}}
main {{display: grid; grid-template-columns: repeat(auto-fill, minmax(300px, 1fr)); gap: 1rem;}}
figure {{margin: 0; border: 1px solid #ccc; padding: .4rem;}}
figure.bad {{border: 3px solid #c00;}}
img {{width: 100%; height: 420px; object-fit: cover; object-position: top;}}
figcaption {{font-size: .85rem;}}
</style></head><body>
<h1>skimviz page gallery</h1>
<p>{len(shots)} screenshots, {time.strftime('%Y-%m-%d %H:%M')}. Click one for the full page.</p>
<main>
{chr(10).join(cells)}
</main></body></html>
"""
    index = out / "index.html"
    index.write_text(page, encoding="utf-8")
    return index


def parse_args(argv=None) -> argparse.Namespace:
    names = [p.name for p in app_pages.PAGES]
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=REPO_ROOT / "artifacts" / "gallery")
    ap.add_argument("--widths", default="1280,768", help="comma-separated, in px")
    ap.add_argument("--pages", default=",".join(names),
                    help=f"comma-separated, of: {', '.join(names)}")
    ap.add_argument("--no-present", dest="present", action="store_false",
                    help="skip the presentation-mode screenshots")
    ap.add_argument("--timeout", type=int, default=180, help="seconds per view")
    args = ap.parse_args(argv)
    try:
        args.widths = [int(w) for w in args.widths.split(",") if w.strip()]
    except ValueError:
        ap.error(f"--widths: whole numbers of px separated by commas, not {args.widths!r}")
    if not args.widths or any(not 200 <= w <= 4000 for w in args.widths):
        ap.error("--widths: each between 200 and 4000 px")
    wanted = [p.strip() for p in args.pages.split(",") if p.strip()]
    unknown = sorted(set(wanted) - set(names))
    if unknown or not wanted:
        ap.error(f"--pages: unknown {', '.join(unknown) or '(none given)'}; "
                 f"known: {', '.join(names)}")
    args.pages = [p for p in app_pages.PAGES if p.name in wanted]
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    chromium = os.environ.get("SKIMVIZ_CHROMIUM") or DEFAULT_CHROMIUM
    if not os.access(chromium, os.X_OK):
        print(f"gallery: Chromium not found at {chromium} (apt-get install -y chromium, "
              "or set SKIMVIZ_CHROMIUM)", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        server = launch_app(args.out / "streamlit-server.log")
    except ServerStartError as exc:
        print(f"gallery: {exc}", file=sys.stderr)
        return 2
    shots: List[Shot] = []
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=chromium, args=CHROMIUM_ARGS, chromium_sandbox=False,
                env={k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")})
            warm_up(browser, server.url, args.timeout * 1000)
            for ap in args.pages:
                for width in args.widths:
                    for present in (False, True) if args.present else (False,):
                        s = shoot(browser, server.url, ap, width, present, args.out,
                                  args.timeout * 1000)
                        flag = f"  FAILED: {'; '.join(s.problems)}" if s.problems else ""
                        print(f"{s.path}  {s.seconds:.1f}s{flag}", flush=True)
                        shots.append(s)
            browser.close()
    finally:
        stop_app(server)
    print(f"index: {write_index(shots, args.out)}")
    failed = [s for s in shots if s.problems]
    for s in failed:
        print(f"FAILED {s.path.name}: {'; '.join(s.problems)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
