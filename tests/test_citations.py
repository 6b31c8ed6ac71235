"""Structured citations: `article:` and `reference:` (BibTeX, RIS, CSL-JSON) read into one
checked CSL-JSON item, and its APA 7 rendering (golden strings, HTML and text)."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import FIXTURES

from newsletter.content.article import Article
from newsletter.content.reader import load_issue
from newsletter.content.references import normalize_csl
from newsletter.content.taxonomy import Taxonomy
from newsletter.errors import ContentError
from newsletter.render.citation import apa_html
from newsletter.render.citation import apa_text
from newsletter.render.citation import citation_html
from newsletter.render.citation import citation_text

BODY = "The summary.\n\n## Practice Implications\n\nWhat to do.\n"
FRONT = "title: A Summary\ntopics: [Empathy]\nresearch_type: Meta-analysis\n"


def article(**fields: Any) -> Article:
    problems: list[ContentError] = []
    csl = normalize_csl(fields, "test.md", problems)
    assert not problems, [str(p) for p in problems]
    assert csl is not None
    return Article(csl)


def people(count: int) -> list[dict[str, str]]:
    return [
        {"family": f"Author{n}", "given": f"A. {chr(64 + n % 26 or 26)}."}
        for n in range(1, count + 1)
    ]


JOURNAL = {
    "title": "Psychotherapy for depression in adults: A meta-analytic update",
    "issued": 2014,
    "container-title": "World Psychiatry",
    "volume": 13,
    "issue": 1,
    "page": "56-67",
    "DOI": "10.1002/wps.20089",
}

# (case, fields, the APA 7 reference as text, as HTML).
GOLDEN = [
    (
        "one author",
        {**JOURNAL, "author": ["Cuijpers, P."]},
        "Cuijpers, P. (2014). Psychotherapy for depression in adults: A meta-analytic update. "
        "World Psychiatry, 13(1), 56–67. https://doi.org/10.1002/wps.20089",
        "Cuijpers, P. (2014). Psychotherapy for depression in adults: A meta-analytic update. "
        "<i>World Psychiatry</i>, <i>13</i>(1), 56–67. "
        '<a href="https://doi.org/10.1002/wps.20089">https://doi.org/10.1002/wps.20089</a>',
    ),
    (
        "two authors",
        {**JOURNAL, "author": ["Swift, J. K.", "Greenberg, R. P."], "DOI": None},
        "Swift, J. K., & Greenberg, R. P. (2014). Psychotherapy for depression in adults: "
        "A meta-analytic update. World Psychiatry, 13(1), 56–67.",
        "Swift, J. K., &amp; Greenberg, R. P. (2014). Psychotherapy for depression in adults: "
        "A meta-analytic update. <i>World Psychiatry</i>, <i>13</i>(1), 56–67.",
    ),
    (
        "three authors and a PubMed ID",
        {**JOURNAL, "author": people(3), "PMID": "24497254"},
        "Author1, A. A., Author2, A. B., & Author3, A. C. (2014). Psychotherapy for depression "
        "in adults: A meta-analytic update. World Psychiatry, 13(1), 56–67. "
        "https://doi.org/10.1002/wps.20089 PubMed: https://pubmed.ncbi.nlm.nih.gov/24497254/",
        "Author1, A. A., Author2, A. B., &amp; Author3, A. C. (2014). Psychotherapy for "
        "depression in adults: A meta-analytic update. <i>World Psychiatry</i>, <i>13</i>(1), "
        '56–67. <a href="https://doi.org/10.1002/wps.20089">https://doi.org/10.1002/wps.20089</a>'
        ' <a href="https://pubmed.ncbi.nlm.nih.gov/24497254/">PubMed</a>',
    ),
    (
        "twenty authors, every one listed",
        {**JOURNAL, "author": people(20), "DOI": None},
        ", ".join(f"Author{n}, A. {chr(64 + n)}." for n in range(1, 20))
        + ", & Author20, A. T. (2014). Psychotherapy for depression in adults: A meta-analytic "
        "update. World Psychiatry, 13(1), 56–67.",
        ", ".join(f"Author{n}, A. {chr(64 + n)}." for n in range(1, 20))
        + ", &amp; Author20, A. T. (2014). Psychotherapy for depression in adults: A "
        "meta-analytic update. <i>World Psychiatry</i>, <i>13</i>(1), 56–67.",
    ),
    (
        "twenty-one authors: the first nineteen, an ellipsis and the last",
        {**JOURNAL, "author": people(21), "DOI": None},
        ", ".join(f"Author{n}, A. {chr(64 + n)}." for n in range(1, 20))
        + ", … Author21, A. U. (2014). Psychotherapy for depression in adults: A meta-analytic "
        "update. World Psychiatry, 13(1), 56–67.",
        ", ".join(f"Author{n}, A. {chr(64 + n)}." for n in range(1, 20))
        + ", … Author21, A. U. (2014). Psychotherapy for depression in adults: A meta-analytic "
        "update. <i>World Psychiatry</i>, <i>13</i>(1), 56–67.",
    ),
    (
        "advance online publication: no volume, issue or pages",
        {
            "title": "Therapist effects in routine care",
            "author": ["Wampold, B. E.", "Owen, J."],
            "issued": "2026-03-04",
            "container-title": "Psychotherapy Research",
            "DOI": "10.1080/10503307.2026.0000001",
        },
        "Wampold, B. E., & Owen, J. (2026). Therapist effects in routine care. Psychotherapy "
        "Research. Advance online publication. https://doi.org/10.1080/10503307.2026.0000001",
        "Wampold, B. E., &amp; Owen, J. (2026). Therapist effects in routine care. "
        "<i>Psychotherapy Research</i>. Advance online publication. "
        '<a href="https://doi.org/10.1080/10503307.2026.0000001">'
        "https://doi.org/10.1080/10503307.2026.0000001</a>",
    ),
    (
        "book chapter",
        {
            "type": "chapter",
            "title": "The therapeutic relationship",
            "author": [
                {"family": "Norcross", "given": "J. C."},
                {"family": "Lambert", "given": "M. J."},
            ],
            "editor": ["Lambert, M. J."],
            "issued": 2013,
            "container-title": (
                "Bergin and Garfield's handbook of psychotherapy and behavior change"
            ),
            "edition": "6",
            "page": "169-218",
            "publisher": "Wiley",
        },
        "Norcross, J. C., & Lambert, M. J. (2013). The therapeutic relationship. In M. J. Lambert "
        "(Ed.), Bergin and Garfield's handbook of psychotherapy and behavior change (6th ed., "
        "pp. 169–218). Wiley.",
        "Norcross, J. C., &amp; Lambert, M. J. (2013). The therapeutic relationship. In M. J. "
        "Lambert (Ed.), <i>Bergin and Garfield's handbook of psychotherapy and behavior "
        "change</i> (6th ed., pp. 169–218). Wiley.",
    ),
    (
        "a title that ends in a question mark keeps only its own mark",
        {**JOURNAL, "author": ["Goldberg, S. B."], "title": "Do therapists improve?", "DOI": None},
        "Goldberg, S. B. (2014). Do therapists improve? World Psychiatry, 13(1), 56–67.",
        "Goldberg, S. B. (2014). Do therapists improve? <i>World Psychiatry</i>, <i>13</i>(1), "
        "56–67.",
    ),
    (
        "an organization as author; markup characters in the title",
        {**JOURNAL, "author": ["World Health Organization"], "title": "Care <now> & later"},
        "World Health Organization. (2014). Care <now> & later. World Psychiatry, 13(1), 56–67. "
        "https://doi.org/10.1002/wps.20089",
        "World Health Organization. (2014). Care &lt;now&gt; &amp; later. <i>World "
        "Psychiatry</i>, <i>13</i>(1), 56–67. "
        '<a href="https://doi.org/10.1002/wps.20089">https://doi.org/10.1002/wps.20089</a>',
    ),
]


@pytest.mark.parametrize(("case", "fields", "text", "html"), GOLDEN, ids=[g[0] for g in GOLDEN])
def test_apa_golden(case: str, fields: dict[str, Any], text: str, html: str) -> None:
    item = article(**{k: v for k, v in fields.items() if v is not None})
    assert apa_text(item) == text
    assert str(apa_html(item)) == html


def test_text_has_no_markup_and_html_is_one_fragment() -> None:
    item = article(**GOLDEN[2][1])
    assert "<" not in apa_text(item) and "&amp;" not in apa_text(item)
    assert str(apa_html(item)).count("<a ") == 2


def test_rendered_once_per_article(monkeypatch: pytest.MonkeyPatch) -> None:
    """The citation is cached: the same article (another variant, another subscriber) is not
    rendered by citeproc-py again."""
    from newsletter.render import citation

    item = article(**{**JOURNAL, "author": ["Once, O."], "title": "Cached title"})
    first = apa_html(item)
    calls: list[object] = []
    original = citation._render
    monkeypatch.setattr(citation, "_render", lambda *a, **k: calls.append(a) or original(*a, **k))
    assert apa_html(Article(dict(item.csl))) == first  # an equal article, another object
    assert apa_text(item)  # the text part is its own rendering, once too
    apa_text(item)
    assert len(calls) == 1


def test_summary_citation_helpers_cover_free_text(taxonomy: Taxonomy) -> None:
    issue = load_issue(FIXTURES / "content", "2025-01", taxonomy, "Test Digest")
    structured, free = issue.summaries[0], issue.summaries[1]
    assert citation_text(structured).startswith("Krupnick, J. L., Sotsky, S. M., Simmens, S.")
    assert citation_text(structured).endswith(" https://doi.org/10.1037/0022-006X.64.3.532")
    assert "<i>Journal of Consulting and Clinical Psychology</i>" in citation_html(structured)
    assert citation_text(free) == free.citation
    assert citation_html(free) == free.citation.replace("&", "&amp;")
    feedback = load_issue(FIXTURES / "content", "2025-02", taxonomy, "Test Digest").summaries[0]
    assert citation_html(feedback).endswith(
        '<a href="https://doi.org/10.1037/a0019247">doi:10.1037/a0019247</a>'
    )


# -- front matter ---------------------------------------------------------------------------
