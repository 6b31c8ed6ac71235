"""Archive citations under stress: hostile values stay text in the page, BibTeX, RIS, CSL-JSON
and the feed; book chapters, advance online articles, ASCII reference keys, a DOI kept."""

from __future__ import annotations

import json
from dataclasses import replace as dataclasses_replace
from pathlib import Path
from typing import Any

import pytest
from archive_articles import ARTICLES
from outside_tools import require_module
from test_archive_cite import bibtex_entries
from test_archive_cite import meta_tags
from test_archive_cite import settings_for

from newsletter import archive
from newsletter.archive import references
from newsletter.archive import scholar
from newsletter.content.article import Article
from newsletter.content.model import Issue
from newsletter.content.model import Summary
from newsletter.content.taxonomy import Taxonomy
from newsletter.render.citation import apa_text

bs4 = require_module("bs4", "needs beautifulsoup4")
feedparser = require_module("feedparser", "needs feedparser")
bibtexparser = require_module("bibtexparser", "needs bibtexparser")
rispy = require_module("rispy", "needs rispy")


HOSTILE_TITLE = (
    'A "quoted" title & <b>tags</b> </script><script>alert(1)</script> {braces} } lone '
    "% $5 #1 snake_case back\\slash ~tilde O'Brien\nER  - TY  - JOUR"
)
HOSTILE = {
    "type": "article-journal",
    "title": HOSTILE_TITLE,
    "author": [
        {"family": "O'Brien", "given": 'Ann "Q"'},
        {"literal": "Johnson and Johnson </script>"},
        {"family": "Müller", "given": "Jürgen"},
    ],
    "issued": {"date-parts": [[2024, 2, 29]]},
    "container-title": "A & B {Journal",
    "volume": "1",
    "page": "e0123",
    "DOI": "10.5555/x<1>",
    "URL": "https://example.org/a?b=1&c=%7Bx%7D",
}


def one_line(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture(scope="module")
def hostile_site(tmp_path_factory) -> Path:
    from newsletter.content.taxonomy import default_taxonomy

    taxonomy: Taxonomy = default_taxonomy()
    root = tmp_path_factory.mktemp("hostile")
    summary = Summary(
        month="2026-09",
        slug="hostile",
        title='Summary "title" </script><!-- & {x}',
        topics=(),
        research_type=taxonomy.research_types.terms[0],
        citation='O\'Brien "free text" </p><script>x</script>',
        doi="",
        order=None,
        summary_md="Body.",
        implications_md="Do.",
        article=Article(HOSTILE),
    )
    issue = Issue(month="2026-09", subject="", summaries=(summary,), public=True)
    result = archive.build_site(
        settings_for(root), taxonomy, root / "site", search=False, issues=[issue]
    )
    return result.out


def test_hostile_values_stay_text_in_the_page(hostile_site):
    html = (hostile_site / "2026-09/hostile/index.html").read_text()
    soup = bs4.BeautifulSoup(html, "html.parser")
    tags = meta_tags(soup)
    assert ("citation_title", one_line(HOSTILE_TITLE)) in tags
    assert ("citation_author", 'O\'Brien, Ann "Q"') in tags
    assert ("citation_author", "Johnson and Johnson </script>") in tags
    assert ("citation_journal_title", "A & B {Journal") in tags
    assert ("citation_doi", "10.5555/x<1>") in tags
    # No value became markup: the only scripts are the JSON-LD block, panel.js and cite.js.
    assert [s.get("type") or s.get("src") for s in soup.find_all("script")] == [
        "application/ld+json",
        "/static/panel.js",
        "/static/cite.js",
    ]
    assert soup.find("b") is None
    block = html.split('<script type="application/ld+json">', 1)[1].split("</script>", 1)[0]
    assert "<" not in block and ">" not in block
    data = json.loads(block)
    assert data["name"] == 'Summary "title" </script><!-- & {x}'
    assert data["itemReviewed"]["name"] == HOSTILE_TITLE
    assert data["itemReviewed"]["author"][1] == {
        "@type": "Organization",
        "name": "Johnson and Johnson </script>",
    }
    # The article's APA reference (not the free-text `citation:` beside it), as text only.
    assert soup.find(class_="citation").get_text() == apa_text(Article(HOSTILE))
    cited = soup.find(id="cite-summary")
    assert cited.i.get_text() == 'Summary "title" </script><!-- & {x}'
    assert soup.find("button", class_="copy-button")["data-copy"] == cited.get_text()


def test_hostile_values_stay_text_in_bibtex(hostile_site):
    text = (hostile_site / "2026-09/hostile/article.bib").read_text()
    for line in text.splitlines()[1:-1]:  # each field's value has balanced braces
        value = line.split(" = ", 1)[1].rstrip(",")
        depth = 0
        for char in value:
            depth += {"{": 1, "}": -1}.get(char, 0)
            assert depth >= 0, line
        assert depth == 0, line
    [entry] = bibtex_entries(text)
    fields = {key: field.value for key, field in entry.fields_dict.items()}
    # pylatexenc writes " as LaTeX's closing quotes ('') and reads them back as ”.
    assert fields["title"] == one_line(HOSTILE_TITLE).replace('"', "”")
    authors = fields["author"]
    assert len(authors) == 3  # the organization's "and" did not split it
    assert (" ".join(authors[0].last), " ".join(authors[0].first)) == ("O'Brien", "Ann ”Q”")
    assert " ".join(authors[1].last) == "Johnson and Johnson </script>"
    assert (" ".join(authors[2].last), " ".join(authors[2].first)) == ("Müller", "Jürgen")
    assert fields["journal"] == "A & B {Journal"
    assert fields["pages"] == "e0123"
    # DOI and URL are verbatim fields; read raw: braces percent-encoded, nothing else.
    raw = {f.key: f.value for f in bibtexparser.parse_string(text).entries[0].fields}
    assert raw["doi"] == "10.5555/x<1>"
    assert raw["url"] == HOSTILE["URL"]


def test_hostile_values_stay_text_in_ris_and_csl_json(hostile_site):
    folder = hostile_site / "2026-09/hostile"
    [record] = rispy.loads((folder / "article.ris").read_text())
    assert record["title"] == one_line(HOSTILE_TITLE)  # the newline could not end the record
    assert record["authors"] == [
        'O\'Brien, Ann "Q"',
        "Johnson and Johnson </script>",
        "Müller, Jürgen",
    ]
    assert record["doi"] == "10.5555/x<1>"
    assert record["urls"] == [HOSTILE["URL"]]
    [item] = json.loads((folder / "article.json").read_text())
    assert {k: v for k, v in item.items() if k != "id"} == HOSTILE
    assert item["id"] == "obrien2024quoted"


def test_hostile_feed_parses(hostile_site):
    feed = feedparser.parse((hostile_site / "feeds/atom.xml").read_bytes())
    assert not feed.bozo, feed.get("bozo_exception")
    [entry] = feed.entries
    related = [link.href for link in entry.links if link.rel == "related"]
    assert related == [scholar.doi_url("10.5555/x<1>")] == ["https://doi.org/10.5555/x%3C1%3E"]


# -- other kinds of work ----------------------------------------------------------------------


def summary_with(item: dict[str, Any], doi: str = "") -> Summary:
    from newsletter.content.taxonomy import Term

    return Summary(
        "2026-09",
        "s",
        "A summary",
        (),
        Term("x", "X"),
        "",
        doi,
        None,
        "",
        "",
        article=Article(item),
    )


def test_a_book_chapter_is_in_a_book():
    chapter = {
        "type": "chapter",
        "title": "Measuring outcomes",
        "author": [{"family": "Editor", "given": "Ed"}],
        "editor": [{"family": "Volume", "given": "Vera"}],
        "issued": {"date-parts": [[2023]]},
        "container-title": "Handbook of Examples",
        "publisher": "Example Press",
        "page": "12-30",
    }
    summary = summary_with(chapter)
    tags = dict(scholar.highwire_tags(summary))
    assert tags["citation_inbook_title"] == "Handbook of Examples"
    assert "citation_journal_title" not in tags
    reviewed = scholar.scholarly_article(summary)
    assert reviewed is not None
    assert reviewed["@type"] == "Chapter"
    assert reviewed["isPartOf"] == {"@type": "Book", "name": "Handbook of Examples"}
    [entry] = bibtex_entries(references.bibtex_entry(summary.article, "k"))
    assert entry.entry_type == "incollection"
    assert entry.fields_dict["booktitle"].value == "Handbook of Examples"
    assert entry.fields_dict["publisher"].value == "Example Press"
    assert [" ".join(n.last) for n in entry.fields_dict["editor"].value] == ["Volume"]
    [record] = rispy.loads(references.ris_record(summary.article))
    assert record["type_of_reference"] == "CHAP"
    assert record["secondary_authors"] == ["Volume, Vera"]
    assert record["secondary_title"] == "Handbook of Examples"


def test_an_advance_online_article_has_no_volume_or_pages():
    online = {
        "type": "article-journal",
        "title": "Early view",
        "author": [{"family": "Soon", "given": "S."}],
        "issued": {"date-parts": [[2026, 3, 2]]},
        "container-title": "Example Journal",
        "DOI": "10.5555/early",
    }
    summary = summary_with(online)
    names = [name for name, _ in scholar.highwire_tags(summary)]
    assert names == [
        "citation_title",
        "citation_author",
        "citation_publication_date",
        "citation_journal_title",
        "citation_doi",
    ]
    [entry] = bibtex_entries(references.bibtex_entry(summary.article, "k"))
    assert not {"volume", "number", "pages"} & set(entry.fields_dict)
    [record] = rispy.loads(references.ris_record(summary.article))
    assert not {"volume", "number", "start_page", "end_page"} & set(record)


def test_reference_keys_are_ascii():
    item = {
        "title": "Über die Zeit",
        "author": [{"family": "Ødegård"}],
        "issued": {"date-parts": [[2020]]},
    }
    assert references.reference_key(Article(item)) == "odegard2020uber"
    assert references.reference_key(Article({})) == "article"


def test_the_downloads_carry_the_summarys_doi_when_the_article_data_has_none(tmp_path):
    from newsletter.archive.generator import generate
    from newsletter.archive.generator import site_info
    from newsletter.content.taxonomy import default_taxonomy

    item = {k: v for k, v in ARTICLES["2026-07/cbt-long-term"].items() if k != "DOI"}
    summary = dataclasses_replace(summary_with(item), doi="10.5555/from-front-matter")
    issue = Issue(month="2026-09", subject="", summaries=(summary,), public=True)
    site = generate([issue], default_taxonomy(), site_info(settings_for(tmp_path)))
    files = {file.path: file.data.decode() for file in site.files}
    [record] = rispy.loads(files["2026-09/s/article.ris"])
    assert record["doi"] == "10.5555/from-front-matter"
    assert json.loads(files["2026-09/s/article.json"])[0]["DOI"] == "10.5555/from-front-matter"
    assert "doi = {10.5555/from-front-matter}" in files["2026-09/s/article.bib"]
