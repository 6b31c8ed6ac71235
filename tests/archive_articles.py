"""Structured article data (CSL-JSON) for summaries of the archive fixture.

Given to the archive as `Summary.article` (what the reader builds from `article:` in front
matter), so the archive tests do not depend on the front-matter reader. The studies are
invented, like the rest of tests/fixtures/archive_content.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from newsletter.content.article import Article
from newsletter.content.model import Issue

# "YYYY-MM/slug" -> CSL-JSON item. 2026-05/feedback-reduces-deterioration keeps only its
# `doi:`, and 2026-06/therapist-empathy has neither article data nor a DOI.
ARTICLES: dict[str, dict[str, Any]] = {
    "2026-06/alliance-repair": {
        "type": "article-journal",
        "title": "Rupture repair in community practice",
        "author": [
            {"family": "Model", "given": "Dana"},
            {"family": "Trial", "given": "Émile"},
            {"family": "Case", "given": "Frances"},
        ],
        "issued": {"date-parts": [[2025, 4, 15]]},
        "container-title": "Practice Research Example",
        "volume": "8",
        "issue": "2",
        "page": "55–70",
        "DOI": "10.5555/example.2025.003",
        "PMID": "31234567",
    },
    "2026-07/cbt-long-term": {
        "type": "article-journal",
        "title": "Two-year outcomes of cognitive-behavioural therapy for depression",
        "author": [{"family": "Follow", "given": "Hana"}, {"family": "Up", "given": "Ivo"}],
        "issued": {"date-parts": [[2025, 1]]},
        "container-title": "Example Trials",
        "volume": "19",
        "issue": "1",
        "page": "33-47",
        "DOI": "10.5555/example.2025.004",
        "URL": "https://trials.example.org/articles/19/1/33",
    },
}


def with_articles(issues: Iterable[Issue], articles: dict[str, dict[str, Any]] = ARTICLES):
    """The issues with `article` set on the summaries named in `articles`."""
    return [
        dataclasses.replace(
            issue,
            summaries=tuple(
                dataclasses.replace(s, article=Article(articles[s.key])) if s.key in articles else s
                for s in issue.summaries
            ),
        )
        for issue in issues
    ]
