"""Summary pages for reference managers and search engines: Highwire `citation_*` tags,
schema.org JSON-LD, the BibTeX / RIS / CSL-JSON downloads, "Cite this summary", and the DOI
as the feed entries' related link. Everything is parsed back and compared with the article
data (tests/archive_articles.py); hostile values must stay escaped in every format."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from archive_articles import ARTICLES
from archive_articles import with_articles
from conftest import FIXTURES
from outside_tools import require_module

from newsletter import archive
from newsletter.config import settings_from_dict

bs4 = require_module("bs4", "needs beautifulsoup4")
feedparser = require_module("feedparser", "needs feedparser")
bibtexparser = require_module("bibtexparser", "needs bibtexparser")
rispy = require_module("rispy", "needs rispy")

CONTENT = FIXTURES / "archive_content"
SENT = {"2026-05", "2026-06"}
SITE_URL = "https://news.example.org/"


def settings_for(tmp_path: Path):
    return settings_from_dict(
        {
            "newsletter": {"name": "Test Digest", "base_url": "https://news.example.org"},
            "content": {"dir": str(CONTENT)},
            "archive": {"page_size": 1},
        },
        tmp_path,
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The fixture archive, two of whose summaries carry article data."""
    from newsletter.content.taxonomy import default_taxonomy

    root = tmp_path_factory.mktemp("cite")
    taxonomy = default_taxonomy()
    issues = with_articles(archive.read_issues(CONTENT, taxonomy, "Test Digest"))
    result = archive.build_site(
        settings_for(root), taxonomy, root / "site", sent=SENT, search=False, issues=issues
    )
    return result.out


def soup_of(site: Path, path: str):
    return bs4.BeautifulSoup((site / path / "index.html").read_text(), "html.parser")


def meta_tags(soup) -> list[tuple[str, str]]:
    return [
        (tag["name"], tag["content"])
        for tag in soup.head.find_all("meta")
        if tag.get("name", "").startswith("citation_")
    ]


def json_ld(soup) -> dict[str, Any]:
    scripts = soup.find_all("script", type="application/ld+json")
    assert len(scripts) == 1
    return json.loads(scripts[0].string)


# -- meta tags -------------------------------------------------------------------------------


def test_meta_tags_of_a_summary_page_are_the_articles(site):
    item = ARTICLES["2026-06/alliance-repair"]
    tags = meta_tags(soup_of(site, "2026-06/alliance-repair"))
    assert tags == [
        ("citation_title", item["title"]),
        *[("citation_author", f"{a['family']}, {a['given']}") for a in item["author"]],
        ("citation_publication_date", "2025/04/15"),
        ("citation_journal_title", item["container-title"]),
        ("citation_volume", item["volume"]),
        ("citation_issue", item["issue"]),
        ("citation_firstpage", "55"),
        ("citation_lastpage", "70"),
        ("citation_doi", item["DOI"]),
        ("citation_pmid", item["PMID"]),
    ]


def test_a_date_without_a_day_is_the_year_and_absent_fields_have_no_tags(site):
    tags = dict(meta_tags(soup_of(site, "2026-07/cbt-long-term")))
    assert tags["citation_publication_date"] == "2025"  # issued 2025-01: Scholar's two forms
    assert tags["citation_firstpage"] == "33" and tags["citation_lastpage"] == "47"
    assert "citation_pmid" not in tags


def test_a_summary_with_only_a_doi_gets_citation_doi_and_nothing_else(site):
    soup = soup_of(site, "2026-05/feedback-reduces-deterioration")
    assert meta_tags(soup) == [("citation_doi", "10.5555/example.2025.001")]
    data = json_ld(soup)
    assert data["@type"] == "Review"
    assert data["itemReviewed"] == {
        "@type": "ScholarlyArticle",
        "identifier": {
            "@type": "PropertyValue",
            "propertyID": "DOI",
            "value": "10.5555/example.2025.001",
        },
        "sameAs": "https://doi.org/10.5555/example.2025.001",
    }
    assert soup.find("a", href=lambda h: h and h.endswith(".bib")) is None


def test_a_summary_with_neither_has_no_citation_tags_and_is_a_creative_work(site):
    soup = soup_of(site, "2026-06/therapist-empathy")
    assert meta_tags(soup) == []
    assert all(tag.get("content", "x").strip() for tag in soup.head.find_all("meta"))
    data = json_ld(soup)
    assert data["@type"] == "CreativeWork" and "itemReviewed" not in data
    assert soup.find(string="Cite the article") is None
    assert soup.find(id="cite-summary") is not None


# -- JSON-LD ---------------------------------------------------------------------------------


def test_json_ld_is_a_review_of_the_scholarly_article(site):
    item = ARTICLES["2026-06/alliance-repair"]
    soup = soup_of(site, "2026-06/alliance-repair")
    data = json_ld(soup)
    assert data["@context"] == "https://schema.org"
    assert data["@type"] == "Review"
    assert data["url"] == soup.find("link", rel="canonical")["href"]
    assert data["name"] == "Repairing Ruptures Predicts Better Outcomes"
    assert data["datePublished"] == "2026-06"
    assert data["author"]["name"] == "Test Digest"
    reviewed = data["itemReviewed"]
    assert reviewed["@type"] == "ScholarlyArticle"
    assert reviewed["name"] == item["title"]
    assert [(a["@type"], a["familyName"], a["givenName"]) for a in reviewed["author"]] == [
        ("Person", a["family"], a["given"]) for a in item["author"]
    ]
    assert reviewed["datePublished"] == "2025-04-15"
    issue = reviewed["isPartOf"]
    assert (issue["@type"], issue["issueNumber"]) == ("PublicationIssue", "2")
    volume = issue["isPartOf"]
    assert (volume["@type"], volume["volumeNumber"]) == ("PublicationVolume", "8")
    assert volume["isPartOf"] == {"@type": "Periodical", "name": item["container-title"]}
    assert (reviewed["pageStart"], reviewed["pageEnd"]) == ("55", "70")
    assert {(i["propertyID"], i["value"]) for i in reviewed["identifier"]} == {
        ("DOI", item["DOI"]),
        ("PMID", item["PMID"]),
    }
    assert reviewed["sameAs"] == "https://doi.org/" + item["DOI"]


# -- downloads -------------------------------------------------------------------------------


def downloads(site: Path, path: str) -> dict[str, str]:
    """Label -> text of each "Cite the article" file, following the page's links."""
    soup = soup_of(site, path)
    found = {}
    for link in soup.select(".downloads a"):
        found[link.get_text()] = (site / link["href"].lstrip("/")).read_text(encoding="utf-8")
    return found


def bibtex_entries(text: str):
    from bibtexparser import middlewares as m
    from pylatexenc.latex2text import LatexNodes2Text
    from pylatexenc.latex2text import MacroTextSpec
    from pylatexenc.latex2text import get_default_latex_context_db

    # pylatexenc's decoder does not know the brace macros the writer uses (LaTeX does).
    context = get_default_latex_context_db()
    context.add_context_category(
        "braces",
        macros=[MacroTextSpec("textbraceleft", "{"), MacroTextSpec("textbraceright", "}")],
        prepend=True,
    )
    decoder = LatexNodes2Text(latex_context=context)
    # Names are split first (an organization's braces keep its "and"), then decoded part by
    # part: the decoding middleware leaves lists of names alone.
    library = bibtexparser.parse_string(
        text,
        append_middleware=[
            m.SeparateCoAuthors(),
            m.SplitNameParts(),
            m.LatexDecodingMiddleware(decoder=decoder),
            m.MonthIntMiddleware(),
        ],
    )
    assert library.failed_blocks == []
    for entry in library.entries:
        for field in entry.fields:
            if field.key in ("author", "editor"):
                for name in field.value:
                    for part in ("first", "von", "last", "jr"):
                        words = getattr(name, part)
                        setattr(name, part, [decoder.latex_to_text(w) for w in words])
    return library.entries


def test_the_bibtex_download_parses_back_to_the_article(site):
    item = ARTICLES["2026-06/alliance-repair"]
    [entry] = bibtex_entries(downloads(site, "2026-06/alliance-repair")["BibTeX"])
    assert entry.entry_type == "article"
    assert entry.key == "model2025rupture"
    fields = {key: field.value for key, field in entry.fields_dict.items()}
    assert [(" ".join(n.first), " ".join(n.last)) for n in fields.pop("author")] == [
        (a["given"], a["family"]) for a in item["author"]
    ]
    assert fields == {
        "title": item["title"],
        "journal": item["container-title"],
        "year": "2025",
        "month": 4,
        "volume": "8",
        "number": "2",
        "pages": "55–70",  # written 55--70, the LaTeX en dash
        "doi": item["DOI"],
        "pmid": item["PMID"],
    }


def test_the_ris_download_parses_back_to_the_article(site):
    item = ARTICLES["2026-06/alliance-repair"]
    text = downloads(site, "2026-06/alliance-repair")["RIS"]
    assert text.startswith("TY  - JOUR\n")  # no rispy counter line before the record
    [record] = rispy.loads(text)
    assert record == {
        "type_of_reference": "JOUR",
        "title": item["title"],
        "authors": [f"{a['family']}, {a['given']}" for a in item["author"]],
        "year": "2025",
        "date": "2025/04/15",
        "secondary_title": item["container-title"],
        "volume": "8",
        "number": "2",
        "start_page": "55",
        "end_page": "70",
        "doi": item["DOI"],
        "accession_number": item["PMID"],
    }


def test_the_csl_json_download_is_the_item_with_an_id(site):
    files = downloads(site, "2026-07/cbt-long-term")
    assert set(files) == {"BibTeX", "RIS", "CSL-JSON"}
    assert json.loads(files["CSL-JSON"]) == [
        {**ARTICLES["2026-07/cbt-long-term"], "id": "follow2025two"}
    ]


def test_download_links_save_under_the_reference_key(site):
    links = soup_of(site, "2026-06/alliance-repair").select(".downloads a")
    assert [(a["href"], a["download"], a["type"]) for a in links] == [
        ("/2026-06/alliance-repair/article.bib", "model2025rupture.bib", "application/x-bibtex"),
        (
            "/2026-06/alliance-repair/article.ris",
            "model2025rupture.ris",
            "application/x-research-info-systems",
        ),
        (
            "/2026-06/alliance-repair/article.json",
            "model2025rupture.json",
            "application/vnd.citationstyles.csl+json",
        ),
    ]


def test_downloads_only_beside_summaries_with_article_data(site):
    assert sorted(p.relative_to(site).as_posix() for p in site.rglob("article.*")) == [
        f"{key}/article.{ext}" for key in sorted(ARTICLES) for ext in ("bib", "json", "ris")
    ]
    sitemap = (site / "sitemap.xml").read_text()
    assert "article." not in sitemap


# -- cite this summary -----------------------------------------------------------------------


def test_cite_this_summary_is_an_apa_citation_of_the_page(site):
    soup = soup_of(site, "2026-06/alliance-repair")
    url = SITE_URL + "2026-06/alliance-repair/"
    expected = f"Test Digest. (2026, June). Repairing Ruptures Predicts Better Outcomes. {url}"
    cited = soup.find(id="cite-summary")
    assert cited.get_text() == expected
    assert cited.i.get_text() == "Repairing Ruptures Predicts Better Outcomes"
    assert cited.a["href"] == url
    assert soup.find("button", class_="copy-button")["data-copy"] == expected


def test_cite_this_summary_names_its_byline_as_the_author(site):
    """A summary with a byline (`author: Dr. Ada Example`) is cited as hers, by citeproc-py's
    APA: her name inverted and abbreviated, the title in italics, the network as the site."""
    soup = soup_of(site, "2026-07/cbt-long-term")
    url = SITE_URL + "2026-07/cbt-long-term/"
    expected = (
        f"Example, A. (2026, July). CBT Gains for Depression Last Two Years. Test Digest. {url}"
    )
    cited = soup.find(id="cite-summary")
    assert cited.get_text() == expected
    assert cited.i.get_text() == "CBT Gains for Depression Last Two Years"
    assert cited.a["href"] == url
    assert soup.find("button", class_="copy-button")["data-copy"] == expected


@pytest.mark.parametrize(
    ("byline", "names"),
    [
        ("Dr. Ada Example", "Example, A."),
        ("Jane van der Berg, PhD", "van der Berg, J."),
        ("Hill, C. E.", "Hill, C. E."),
        ("A. Writer and B. Reader", "Writer, A., & Reader, B."),
        ("The Editors", "The Editors."),  # a group stays as written
        ("Research Team", "Research Team."),
        ("Cher", "Cher."),
    ],
)
def test_a_bylines_names_as_apa_gives_them(byline: str, names: str) -> None:
    from newsletter.render.citation import page_citation

    url = "https://news.example.org/2026-06/x/"
    html, text = page_citation(byline, "A Title", 2026, 6, "Test Digest", url)
    assert text == f"{names.rstrip('.')}. (2026, June). A Title. Test Digest. {url}"
    assert f'<i>A Title</i>. Test Digest. <a href="{url}">' in html


def test_a_hostile_byline_stays_text_in_the_citation() -> None:
    from newsletter.render.citation import page_citation

    html, text = page_citation(
        "<script>alert(1)</script> & Co", "T", 2026, 6, "D", "https://x.org/"
    )
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<script>" in text  # plain text, escaped where it is put into a page


# -- the feed --------------------------------------------------------------------------------


def test_feed_entries_link_the_doi_as_related(site):
    feed = feedparser.parse((site / "feeds/atom.xml").read_bytes())
    assert not feed.bozo, feed.get("bozo_exception")
    by_id = {entry.id: entry for entry in feed.entries}
    links = by_id[SITE_URL + "2026-06/alliance-repair/"].links
    assert [(link.rel, link.href) for link in links] == [
        ("alternate", SITE_URL + "2026-06/alliance-repair/"),
        ("related", "https://doi.org/10.5555/example.2025.003"),
    ]
    assert links[0].type == "text/html"
    # A summary without a DOI has no related link.
    empathy = by_id[SITE_URL + "2026-06/therapist-empathy/"]
    assert [link.rel for link in empathy.links] == ["alternate"]


# -- hostile values --------------------------------------------------------------------------
