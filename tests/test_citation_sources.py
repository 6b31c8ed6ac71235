"""Where a citation comes from: `article:` front matter, `reference:` files (BibTeX, RIS,
CSL-JSON), their errors, and `summaries new` from a reference or a DOI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_citations import JOURNAL
from test_citations import article

from newsletter.content.reader import parse_summary
from newsletter.content.reader import read_month
from newsletter.content.reference_formats import parse_reference
from newsletter.content.references import normalize_csl
from newsletter.content.taxonomy import Taxonomy
from newsletter.errors import ContentError
from newsletter.errors import ContentProblems
from newsletter.render.checks import check_issue
from newsletter.render.citation import apa_text

BODY = "The summary.\n\n## Practice Implications\n\nWhat to do.\n"
FRONT = "title: A Summary\ntopics: [Empathy]\nresearch_type: Meta-analysis\n"


def summary_file(folder: Path, front: str, name: str = "01-empathy.md") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(f"---\n{front}---\n{BODY}", encoding="utf-8")
    return path


def read(path: Path, taxonomy: Taxonomy) -> Any:
    return parse_summary(path.read_text(encoding="utf-8"), str(path), "2025-03", taxonomy)


def test_article_front_matter_with_shorthands(tmp_path: Path, taxonomy: Taxonomy) -> None:
    path = summary_file(
        tmp_path,
        FRONT
        + "article:\n  title: Empathy\n  author: ['Elliott, R.', 'Bohart, A. C.', Some Group]\n"
        "  issued: '2018-03'\n  container-title: Psychotherapy\n  volume: 55\n  issue: 4\n"
        "  page: 399-410\n  DOI: https://doi.org/10.1037/pst0000175\n  PMID: 30335453\n",
    )
    summary = read(path, taxonomy)
    assert summary.article.csl == {
        "type": "article-journal",
        "title": "Empathy",
        "author": [
            {"family": "Elliott", "given": "R."},
            {"family": "Bohart", "given": "A. C."},
            {"literal": "Some Group"},
        ],
        "issued": {"date-parts": [[2018, 3]]},
        "container-title": "Psychotherapy",
        "volume": "55",
        "issue": "4",
        "page": "399-410",
        "DOI": "10.1037/pst0000175",
        "PMID": "30335453",
    }
    assert summary.doi == "10.1037/pst0000175"  # the one DOI, from the article
    assert summary.citation == ""


def test_a_date_issued_reads_as_date_parts(tmp_path: Path, taxonomy: Taxonomy) -> None:
    front = FRONT + "article:\n  title: T\n  author: ['A, B.']\n  issued: 2018-03-05\n"
    summary = read(summary_file(tmp_path, front), taxonomy)  # YAML reads it as a date
    assert summary.article.date_parts == (2018, 3, 5)


@pytest.mark.parametrize(
    ("fields", "field", "fragment"),
    [
        ("  author: ['A, B.']\n  issued: 2014\n", "article.title", "is required"),
        ("  title: T\n  issued: 2014\n", "article.author", "at least one author"),
        ("  title: T\n  author: []\n  issued: 2014\n", "article.author", "at least one author"),
        ("  title: T\n  author: [{given: Pim}]\n  issued: 2014\n", "article.author", "no family"),
        ("  title: T\n  author: ['A, B.']\n", "article.issued", "year of publication is required"),
        ("  title: T\n  author: ['A, B.']\n  issued: 214\n", "article.issued", "not a plausible"),
        ("  title: T\n  author: ['A, B.']\n  issued: 2999\n", "article.issued", "not a plausible"),
        ("  title: T\n  author: ['A, B.']\n  issued: '2014-13'\n", "article.issued", "real date"),
        (
            "  title: T\n  author: ['A, B.']\n  issued: 2014\n  DOI: 10.12/x\n",
            "article.DOI",
            "not a DOI",
        ),
        (
            "  title: T\n  author: ['A, B.']\n  issued: 2014\n  PMID: PM12\n",
            "article.PMID",
            "PubMed",
        ),
        (
            "  title: T\n  author: ['A, B.']\n  issued: 2014\n  type: paper\n",
            "article.type",
            "CSL type",
        ),
        (
            "  title: T\n  author: ['A, B.']\n  issued: 2014\n  journal: J\n",
            "article.journal",
            "container-title",
        ),
        ("  title: [T]\n  author: ['A, B.']\n  issued: 2014\n", "article.title", "must be text"),
    ],
)
def test_article_errors_name_file_and_field(
    tmp_path: Path, taxonomy: Taxonomy, fields: str, field: str, fragment: str
) -> None:
    path = summary_file(tmp_path, FRONT + "article:\n" + fields)
    with pytest.raises(ContentError) as caught:
        read(path, taxonomy)
    assert caught.value.path == str(path)
    assert caught.value.field == field
    assert fragment in caught.value.detail
    assert str(caught.value).startswith(f"{path}: {field}: ")


def test_a_date_that_does_not_exist_is_an_error_not_a_crash(
    tmp_path: Path, taxonomy: Taxonomy
) -> None:
    path = summary_file(tmp_path, FRONT + "article:\n  issued: 2014-02-30\n")
    with pytest.raises(ContentError, match="day is out of range for month") as caught:
        read(path, taxonomy)
    assert caught.value.path == str(path)


def test_every_article_problem_is_reported(tmp_path: Path, taxonomy: Taxonomy) -> None:
    path = summary_file(tmp_path, FRONT + "article:\n  issued: 1066\n  DOI: nope\n")
    with pytest.raises(ContentProblems) as caught:
        read(path, taxonomy)
    fields = [p.field for p in caught.value.problems]
    assert fields == ["article.issued", "article.title", "article.author", "article.DOI"]


@pytest.mark.parametrize(
    ("extra", "field", "fragment"),
    [
        ("citation: Free text.\n", "citation", "not both"),
        ("reference: ref.bib\n", "reference", "not both"),
        ("doi: 10.1037/other\n", "doi", "differs from the article's DOI"),
    ],
)
def test_article_conflicts(
    tmp_path: Path, taxonomy: Taxonomy, extra: str, field: str, fragment: str
) -> None:
    article_yaml = "article:\n  title: T\n  author: ['A, B.']\n  issued: 2014\n  DOI: 10.1037/a1\n"
    path = summary_file(tmp_path, FRONT + article_yaml + extra)
    with pytest.raises(ContentError) as caught:
        read(path, taxonomy)
    assert (caught.value.field, fragment in caught.value.detail) == (field, True)


def test_doi_front_matter_fills_the_article_and_may_repeat_it(
    tmp_path: Path, taxonomy: Taxonomy
) -> None:
    base = FRONT + "article:\n  title: T\n  author: ['A, B.']\n  issued: 2014\n"
    summary = read(summary_file(tmp_path, base + "doi: doi:10.1037/A1\n"), taxonomy)
    assert summary.article.doi == summary.doi == "10.1037/A1"
    same = base + "  DOI: 10.1037/a1\ndoi: https://doi.org/10.1037/A1\n"  # DOIs ignore case
    assert read(summary_file(tmp_path, same), taxonomy).doi == "10.1037/a1"


def test_top_level_article_fields_point_to_article(tmp_path: Path, taxonomy: Taxonomy) -> None:
    path = summary_file(tmp_path, FRONT + "journal: Psychotherapy\n")
    with pytest.raises(ContentError, match="go under `article:`"):
        read(path, taxonomy)


# -- reference files ------------------------------------------------------------------------

BIBTEX = r"""
@article{fluckiger2018,
  author = {Fl{\"u}ckiger, Christoph and Del Re, A. C. and Bruce E. Wampold and
            van der Berg, Jan and {World Health Organization}},
  title = {The alliance in adult psychotherapy: {A} meta-analytic synthesis},
  journal = {Psychotherapy},
  year = 2018, month = apr,
  volume = {55}, number = {4}, pages = {316--340},
  doi = {10.1037/pst0000172}, pmid = {29792475},
}
"""
RIS = """TY  - JOUR
AU  - Flückiger, Christoph
AU  - Del Re, A. C.
AU  - Wampold, Bruce E.
AU  - van der Berg, Jan
AU  - World Health Organization
TI  - The alliance in adult psychotherapy: A meta-analytic synthesis
T2  - Psychotherapy
PY  - 2018
DA  - 2018/04//
VL  - 55
IS  - 4
SP  - 316
EP  - 340
DO  - 10.1037/pst0000172
ER  -
"""
CSL_JSON = json.dumps(
    [
        {
            "id": "http://zotero.org/users/1/items/ABC",
            "type": "article-journal",
            "title": "The alliance in adult psychotherapy: A meta-analytic synthesis",
            "author": [
                {"family": "Flückiger", "given": "Christoph"},
                {"family": "Del Re", "given": "A. C."},
                {"family": "Wampold", "given": "Bruce E."},
                {"family": "Berg", "given": "Jan", "non-dropping-particle": "van der"},
                {"literal": "World Health Organization"},
            ],
            "issued": {"date-parts": [["2018", "4"]]},
            "container-title": "Psychotherapy",
            "volume": "55",
            "issue": "4",
            "page": "316-340",
            "DOI": "10.1037/pst0000172",
            "abstract": "Dropped: not part of a citation.",
        }
    ]
)
EXPECTED = {
    "type": "article-journal",
    "title": "The alliance in adult psychotherapy: A meta-analytic synthesis",
    "author": [
        {"family": "Flückiger", "given": "Christoph"},
        {"family": "Del Re", "given": "A. C."},
        {"family": "Wampold", "given": "Bruce E."},
        {"family": "Berg", "given": "Jan", "non-dropping-particle": "van der"},
        {"literal": "World Health Organization"},
    ],
    "issued": {"date-parts": [[2018, 4]]},
    "container-title": "Psychotherapy",
    "volume": "55",
    "issue": "4",
    "page": "316-340",
    "DOI": "10.1037/pst0000172",
}


@pytest.mark.parametrize(
    ("name", "text", "extra"),
    [
        ("ref.bib", BIBTEX, {"PMID": "29792475", "page": "316–340"}),
        ("ref.ris", RIS, {}),
        ("ref.json", CSL_JSON, {}),
    ],
)
def test_reference_files_read_into_the_same_article(
    tmp_path: Path, taxonomy: Taxonomy, name: str, text: str, extra: dict[str, str]
) -> None:
    (tmp_path / name).write_text(text, encoding="utf-8")
    path = summary_file(tmp_path, FRONT + f"reference: {name}\n")
    summary = read(path, taxonomy)
    ris_has_no_particles = name == "ref.ris"  # RIS names are 'Family, Given' text only
    expected = {**EXPECTED, **extra}
    if ris_has_no_particles:
        expected["author"] = [
            *EXPECTED["author"][:3],
            {"family": "van der Berg", "given": "Jan"},
            {"literal": "World Health Organization"},
        ]
    assert summary.article.csl == expected
    assert summary.doi == "10.1037/pst0000172"
    assert summary.article.pages == ("316", "340")
    # The same article, whatever the format: the same citation.
    assert apa_text(summary.article).startswith("Flückiger, C., Del Re, A. C., Wampold, B. E.")


def test_csl_json_round_trip() -> None:
    """An article's CSL-JSON (what the archive offers for download) reads back as itself."""
    item = article(**{**JOURNAL, "author": ["Cuijpers, P."], "PMID": 24497254})
    back = parse_reference(json.dumps(dict(item.csl)), ".json", "back.json")
    problems: list[ContentError] = []
    assert normalize_csl(back, "back.json", problems, "") == dict(item.csl)
    assert problems == []
    # and its YAML, as `summaries new` writes it under `article:`
    assert normalize_csl(yaml.safe_load(yaml.safe_dump(dict(item.csl))), "x", problems) == item.csl


@pytest.mark.parametrize(
    ("name", "text", "fragment", "field"),
    [
        ("ref.bib", "@article{x, title = {T}\n", "line 1: not valid BibTeX", None),
        ("ref.bib", "", "holds no reference entry", None),
        ("ref.bib", BIBTEX + BIBTEX.replace("fluckiger2018", "two"), "2 entries", None),
        ("ref.json", "[{", "line 1: not valid JSON", None),
        ("ref.json", '"a string"', "an item (an object)", None),
        ("ref.ris", "TY  - JOUR\nTI  - T\nPY  - 2018\nER  -\n", "at least one author", "author"),
        ("ref.bib", BIBTEX.replace("10.1037/pst0000172", "10.1/x"), "not a DOI", "DOI"),
    ],
)
def test_reference_errors_name_the_reference_file(
    tmp_path: Path, taxonomy: Taxonomy, name: str, text: str, fragment: str, field: str | None
) -> None:
    (tmp_path / name).write_text(text, encoding="utf-8")
    path = summary_file(tmp_path, FRONT + f"reference: {name}\n")
    with pytest.raises(ContentError) as caught:
        read(path, taxonomy)
    assert caught.value.path == str(tmp_path / name)
    assert caught.value.field == field
    assert fragment in caught.value.detail


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("missing.bib", "missing.bib: no such file"),
        ("../x.bib", "beside the summary"),
        ("x.txt", ".bib, .ris or .json"),
    ],
)
def test_reference_names_a_file_beside_the_summary(
    tmp_path: Path, taxonomy: Taxonomy, value: str, fragment: str
) -> None:
    path = summary_file(tmp_path / "2025-03", FRONT + f"reference: {value}\n")
    (tmp_path / "x.bib").write_text(BIBTEX, encoding="utf-8")
    with pytest.raises(ContentError) as caught:
        read(path, taxonomy)
    assert (caught.value.path, caught.value.field) == (str(path), "reference")
    assert fragment in caught.value.detail


def test_issues_check_reports_each_problem_and_notes_free_text(settings, taxonomy) -> None:
    """`issues check`: every article problem of every file is an error naming the file and
    field; a free-text citation is a note (not a warning) that structured data gives more."""
    month = Path(settings.content.dir) / "2025-01"
    (month / "02-cbt-for-anxiety.md").write_text(
        "---\n" + FRONT + "article:\n  title: T\n  issued: 3000\n---\n" + BODY, encoding="utf-8"
    )
    _issue, findings = check_issue(settings, taxonomy, "2025-01")
    errors = [f.message for f in findings if f.level == "error"]
    source = month / "02-cbt-for-anxiety.md"
    assert f"{source}: article.issued: 3000 is not a plausible year" in errors[0]
    assert errors[1] == f"{source}: article.author: at least one author is required"
    notes = [f.message for f in findings if f.level == "ok" and "free text" in f.message]
    assert notes == [
        f"{month / '03-therapist-alliance-variability.md'}: citation: free text; note that "
        "`article:` or `reference:` (structured data) gives an APA citation, reference-manager "
        "meta tags and downloads"
    ]
    assert not [f for f in findings if f.level == "warning"]


def test_the_demo_content_is_structured(taxonomy: Taxonomy) -> None:
    content = Path(__file__).parent.parent / "content"
    months = sorted(p.name for p in content.iterdir() if p.is_dir())
    for month in months:
        reading = read_month(content, month, taxonomy, "Demo")
        assert reading.problems == ()
        for summary in reading.summaries:
            assert summary.article is not None and summary.citation == "", summary.source
            assert apa_text(summary.article)


# -- newsletter summaries new ---------------------------------------------------------------


def fill_draft(path: Path) -> None:
    """What the editor does next: the headline, topics, type and the two sections."""
    text = path.read_text(encoding="utf-8")
    text = text.replace('title: ""  #', "title: The Alliance Everywhere  #", 1)
    text = text.replace("topics: []", "topics: [Empathy]").replace(
        'research_type: ""', "research_type: Meta-analysis"
    )
    text = text.replace("---\n\n\n## Practice", "---\nThe summary.\n\n## Practice") + "Do it.\n"
    path.write_text(text, encoding="utf-8")


@pytest.mark.parametrize(
    ("name", "text"), [("ref.bib", BIBTEX), ("ref.ris", RIS), ("ref.json", CSL_JSON)]
)
def test_summaries_new_from_a_reference(
    tmp_path: Path, runner, config_file: Path, taxonomy: Taxonomy, name: str, text: str
) -> None:
    from newsletter.cli import main

    reference = tmp_path / name
    reference.write_text(text, encoding="utf-8")
    args = ["--config", str(config_file), "summaries", "new", "2025-02", "--from", str(reference)]
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    month = tmp_path / "content" / "2025-02"
    path = month / "03-the-alliance-in-adult-psychotherapy-a-meta-analytic.md"  # after 01, 02
    assert f"wrote {path}" in result.output
    draft = path.read_text(encoding="utf-8")
    assert draft.endswith("---\n\n\n## Practice Implications\n\n")  # both sections empty
    # As written, `issues check` lists what is left: the summary's own fields, not the article's.
    check = runner.invoke(main, ["--config", str(config_file), "issues", "check", "2025-02"])
    assert check.exit_code == 1
    errors = [line for line in check.output.splitlines() if line.startswith("error")]
    assert [line.split(": ")[1] for line in errors] == [
        "title",
        "topics",
        "research_type",
        "body",
        "Practice Implications",
    ]
    fill_draft(path)
    summary = read(path, taxonomy)
    expected = {**EXPECTED, "page": "316–340"} if name == "ref.bib" else dict(EXPECTED)
    if name == "ref.bib":
        expected["PMID"] = "29792475"
    if name == "ref.ris":
        expected["author"] = [*EXPECTED["author"][:3], {"family": "van der Berg", "given": "Jan"}]
        expected["author"].append({"literal": "World Health Organization"})
    assert summary.article.csl == expected
    # and it never overwrites: the same reference again is refused, the file unchanged
    before = path.read_text(encoding="utf-8")
    again = runner.invoke(main, args)
    assert again.exit_code == 1
    assert "already has the slug" in again.output and str(path) in again.output
    assert path.read_text(encoding="utf-8") == before


def test_summaries_new_from_a_doi_leaves_the_rest_to_fill(
    tmp_path: Path, runner, config_file: Path, taxonomy: Taxonomy
) -> None:
    from newsletter.cli import main

    args = ["--config", str(config_file), "summaries", "new", "2025-07"]
    result = runner.invoke(main, [*args, "--doi", "https://doi.org/10.1037/cou0000131"])
    assert result.exit_code == 0, result.output
    path = tmp_path / "content" / "2025-07" / "01-doi-10-1037-cou0000131.md"  # a new month
    check = runner.invoke(main, ["--config", str(config_file), "issues", "check", "2025-07"])
    fields = [line.split(": ")[1] for line in check.output.splitlines() if line.startswith("error")]
    assert fields[3:6] == ["article.author", "article.title", "article.issued"]
    fill_draft(path)
    text = path.read_text(encoding="utf-8")
    for placeholder, value in [
        ("  title: ''", "  title: Do psychotherapists improve with time and experience?"),
        ("{family: '', given: ''}", "{family: Goldberg, given: S. B.}"),
        ("issued: null", "issued: 2016"),
        ("container-title: ''", "container-title: Journal of Counseling Psychology"),
    ]:
        assert placeholder in text
        text = text.replace(placeholder, value)
    path.write_text(text, encoding="utf-8")
    assert apa_text(read(path, taxonomy).article) == (
        "Goldberg, S. B. (2016). Do psychotherapists improve with time and experience? Journal "
        "of Counseling Psychology. Advance online publication. https://doi.org/10.1037/cou0000131"
    )
    # `--from` takes a bare DOI too, and --slug names the file
    more = runner.invoke(main, [*args, "--from", "10.1037/a0019247", "--slug", "feedback"])
    assert more.exit_code == 0, more.output
    assert (path.parent / "02-feedback.md").exists()
