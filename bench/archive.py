"""Benchmark: build the archive for 20 years of synthetic content (240 issues, 600 summaries).

    python bench/archive.py            # full build without search indexing (target: <= 5 s)
    python bench/archive.py --search   # the same plus the Pagefind index

Content is generated into a temporary folder (deterministic, seeded); the figure printed is the
wall time of `newsletter.archive.build_site`: reading every month, generating every page, feed
and sitemap, and writing the site through the atomic writer.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

from newsletter.archive import build_site
from newsletter.config import settings_from_dict
from newsletter.content.taxonomy import default_taxonomy

ISSUES = 240
SUMMARIES = 600
TARGET_SECONDS = 5.0
WORDS = [
    "therapy",
    "client",
    "therapist",
    "alliance",
    "outcome",
    "session",
    "symptom",
    "trial",
    "depression",
    "anxiety",
    "treatment",
    "change",
    "feedback",
    "measure",
    "rupture",
    "repair",
    "group",
    "individual",
    "practice",
    "research",
    "clinician",
    "evidence",
    "effect",
    "sample",
    "follow-up",
    "relapse",
    "dropout",
    "engagement",
    "supervision",
    "training",
    "skill",
    "empathy",
    "attachment",
    "trauma",
    "placebo",
    "medication",
    "combination",
    "review",
]


def paragraph(rng: random.Random, sentences: int) -> str:
    out = []
    for _ in range(sentences):
        words = rng.choices(WORDS, k=rng.randint(12, 24))
        out.append(" ".join(words).capitalize() + ".")
    return " ".join(out)


def write_content(root: Path, seed: int = 6) -> None:
    """240 month folders from 2007-01, 2 or 3 summaries each, 600 in all."""
    rng = random.Random(seed)
    taxonomy = default_taxonomy()
    topics = [term.label for term in taxonomy.topics]
    types = [term.label for term in taxonomy.research_types]
    counts = [3] * (SUMMARIES - 2 * ISSUES) + [2] * (3 * ISSUES - SUMMARIES)
    rng.shuffle(counts)
    for index, count in enumerate(counts):
        year, month = 2007 + index // 12, index % 12 + 1
        folder = root / f"{year}-{month:02d}"
        folder.mkdir(parents=True)
        (folder / "issue.md").write_text(
            f"---\nsubject: Issue {index + 1}\npublic: true\n---\n{paragraph(rng, 2)}\n"
        )
        for number in range(1, count + 1):
            chosen = rng.sample(topics, rng.randint(1, 4))
            body = "\n\n".join(paragraph(rng, rng.randint(4, 7)) for _ in range(4))
            (folder / f"{number:02d}-study-{number}.md").write_text(
                "---\n"
                f"title: Study {index + 1}.{number} on {chosen[0]}\n"
                "topics:\n" + "".join(f'  - "{t}"\n' for t in chosen) + ""
                f"research_type: {rng.choice(types)}\n"
                f'citation: "Author, A. ({year}). Study {index}. Journal, {number}, 1-10."\n'
                f"doi: 10.5555/bench.{index}.{number}\n"
                "---\n"
                f"{body}\n\n## Practice Implications\n\n{paragraph(rng, 4)}\n"
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--search", action="store_true", help="also build the Pagefind index")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="archive-bench-") as tmp:
        root = Path(tmp)
        write_content(root / "content")
        settings = settings_from_dict(
            {"content": {"dir": "content"}, "newsletter": {"base_url": "https://example.org"}},
            root,
        )
        started = time.perf_counter()
        result = build_site(
            settings, default_taxonomy(), root / "site", include_unsent=True, search=args.search
        )
        elapsed = time.perf_counter() - started
    search = "with" if args.search else "without"
    print(
        f"archive build: {len(result.months)} issues, {result.summaries} summaries, "
        f"{result.pages} pages, {result.files} files in {elapsed:.2f} s ({search} search)"
    )
    if not args.search and elapsed > TARGET_SECONDS:
        print(f"slower than the {TARGET_SECONDS:.0f} s target", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
