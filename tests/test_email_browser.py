"""The digest in Chromium (Playwright): light and dark mode, at 375 and 1280 px.

The digest declares `color-scheme: light dark`, so in dark mode its card, text and links must
turn dark for real (the @media (prefers-color-scheme: dark) block premailer keeps), and in both
modes every visible text must keep WCAG AA contrast (4.5:1) against what is behind it.
Screenshots go to the test's temp folder. Needs /usr/bin/chromium (never `playwright install`).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from browser import chromium

from newsletter.content.reader import load_issue
from newsletter.message.preview import preview_parts
from newsletter.personalize import make_recipient

pytestmark = [pytest.mark.browser]

AA = 4.5

# Every visible text node's colour, the first opaque background behind it, and their contrast;
# the background behind the first summary title (the card) and the match line's colour.
COLOURS_JS = """
() => {
  const parse = (c) => {
    const m = c.match(/rgba?\\(([^)]+)\\)/);
    if (!m) return null;
    const p = m[1].split(/[ ,\\/]+/).filter(Boolean).map(Number);
    return { r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1 };
  };
  const channel = (v) => {
    v /= 255;
    return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
  };
  const luminance = (c) => 0.2126 * channel(c.r) + 0.7152 * channel(c.g) + 0.0722 * channel(c.b);
  const behind = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c && c.a > 0) return c;
    }
    return { r: 255, g: 255, b: 255, a: 1 };
  };
  const hex = (c) => "#" + [c.r, c.g, c.b].map((v) => v.toString(16).padStart(2, "0")).join("");
  const texts = [];
  const seen = new Set();
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const el = node.parentElement;
    if (!node.textContent.trim() || seen.has(el)) continue;
    seen.add(el);
    if (!el.checkVisibility({ opacityProperty: true, visibilityProperty: true })) continue;
    const fg = parse(getComputedStyle(el).color);
    const bg = behind(el);
    const [hi, lo] = [luminance(fg), luminance(bg)].sort((a, b) => b - a);
    texts.push({
      text: node.textContent.trim().slice(0, 50),
      fg: hex(fg),
      bg: hex(bg),
      ratio: (hi + 0.05) / (lo + 0.05),
    });
  }
  const card = behind(document.querySelector("h2"));
  const match = document.querySelector(".match div");
  return {
    texts,
    card: hex(card),
    cardLuminance: luminance(card),
    bodyLuminance: luminance(behind(document.body)),
    match: match ? hex(parse(getComputedStyle(match).color)) : null,
    scrollWidth: document.documentElement.scrollWidth,
  };
}
"""


@pytest.fixture(scope="module")
def browser():
    with chromium() as launched:
        yield launched


@pytest.fixture
def digest_html(settings, taxonomy) -> str:
    """The personal digest as a reader gets it (slots filled, match lines and stop links)."""
    issue = load_issue(settings.content.dir, "2025-01", taxonomy, settings.newsletter.name)
    topics = frozenset({"anxiety-disorders", "alliance-and-therapeutic-relationship"})
    recipient = make_recipient(settings, "ada@example.net", "Ada Reader", topics)
    return preview_parts(settings, issue, recipient).html


def look(browser, html: str, scheme: str, width: int, shots: Path) -> dict:
    context = browser.new_context(viewport={"width": width, "height": 900}, color_scheme=scheme)
    try:
        page = context.new_page()
        requests: list[str] = []
        page.on("request", lambda request: requests.append(request.url))
        page.set_content(html, wait_until="load")
        page.screenshot(path=str(shots / f"digest-{scheme}-{width}.png"), full_page=True)
        result = page.evaluate(COLOURS_JS)
        assert requests == [], f"the email loads something: {requests}"  # no remote fonts, images
        return result
    finally:
        context.close()


def low_contrast(texts: list[dict]) -> list[str]:
    return [
        f"{t['text']!r}: {t['fg']} on {t['bg']} ({t['ratio']:.2f}:1)"
        for t in texts
        if t["ratio"] < AA
    ]


@pytest.mark.parametrize("width", [375, 1280])
def test_digest_in_light_mode(browser, digest_html, tmp_path, width) -> None:
    seen = look(browser, digest_html, "light", width, tmp_path)
    assert seen["card"] == "#ffffff"
    assert seen["match"] == "#7b5e00"  # amber, not the meta grey
    assert len(seen["texts"]) > 30
    assert low_contrast(seen["texts"]) == []
    assert seen["scrollWidth"] <= width  # no sideways scrolling on a phone


@pytest.mark.parametrize("width", [375, 1280])
def test_digest_in_dark_mode_is_dark(browser, digest_html, tmp_path, width) -> None:
    seen = look(browser, digest_html, "dark", width, tmp_path)
    assert seen["cardLuminance"] < 0.03, f"the card stays light in dark mode: {seen['card']}"
    assert seen["bodyLuminance"] < 0.03
    assert seen["match"] not in (None, "#7b5e00")  # recoloured for the dark card
    assert len(seen["texts"]) > 30
    assert low_contrast(seen["texts"]) == []
    assert seen["scrollWidth"] <= width
