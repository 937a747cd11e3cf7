"""Every rule document is a specification, and every example in it is a test.

`rules/GLxxx-<name>.md` holds ruff's sections and Fixit-style examples (`gradlint/docs.py`):
a `python bad` block must be reported on exactly its marked lines, a `python good` block must not
be reported at all. The registry checks keep the documents and `gradlint.rules` in step.
"""

from __future__ import annotations

import re
import textwrap

import libcst
import pytest

from gradlint import docs
from gradlint.docs import DocError, DocExample
from gradlint.rules import ALL_RULES, RULES_BY_CODE

CODES = [rule.code for rule in ALL_RULES]

REQUIRED_SECTIONS = [
    "What it does",
    "Why is this bad?",
    "Example",
    "Use instead",
    "Options",
    "Known limitations",
    "References",
]

META_RULES = {"GL000", "GL001"}
"""Rules about the run itself (parse errors, suppressions): one example of each kind is enough."""


def _examples_of(code: str) -> list[DocExample]:
    try:
        return docs.examples(code)
    except DocError:
        return []  # test_every_document_parses reports it


ALL_EXAMPLES = [example for code in CODES for example in _examples_of(code)]
BAD_EXAMPLES = [example for example in ALL_EXAMPLES if example.kind == "bad"]
GOOD_EXAMPLES = [example for example in ALL_EXAMPLES if example.kind == "good"]


def _by_id(examples: list[DocExample]):
    return pytest.mark.parametrize("example", examples, ids=[example.test_id for example in examples])


# -- running the examples ------------------------------------------------------------------------


def _lint(example: DocExample):
    """The findings of the example's own code, as {(file name, line)}, and the findings themselves."""
    from gradlint.api import lint_sources  # imported here: the registry checks run without the engine

    code = example.code
    # GL001 judges the suppressions of the other rules, so those rules must run too.
    select = set(RULES_BY_CODE) if code == "GL001" else {code}
    findings = lint_sources(
        example.files,
        select=select,
        rule_options={code: example.options},
        report_unused_ignores=(code == "GL001"),
    )
    own = [finding for finding in findings if finding.code == code]
    return {(finding.display_path, finding.line) for finding in own}, own


def _show(example: DocExample, findings) -> str:
    """The example with line numbers, marks and findings, for a readable failure."""
    reported = {(finding.display_path, finding.line): finding.message for finding in findings}
    out = [f"{example.test_id} (line {example.line} of its document), options {example.options}"]
    for name, source in example.files.items():
        out.append(f"--- {name}")
        for number, text in enumerate(source.splitlines(), start=1):
            marked = number in example.expected.get(name, set())
            message = reported.get((name, number))
            if message:
                note = f"  <-- {'reported' if marked else 'UNEXPECTED'}: {message}"
            else:
                note = "  <-- MISSING: marked but not reported" if marked else ""
            out.append(f"{number:4d} | {text}{note}")
    return "\n".join(out)


@_by_id(BAD_EXAMPLES)
def test_bad_example_is_reported_on_exactly_its_marked_lines(example: DocExample) -> None:
    reported, findings = _lint(example)
    assert reported == example.expected_findings, _show(example, findings)


@_by_id(GOOD_EXAMPLES)
def test_good_example_is_not_reported(example: DocExample) -> None:
    reported, findings = _lint(example)
    assert reported == set(), _show(example, findings)


CROSS_MARKED = [example for example in ALL_EXAMPLES if example.other_marks]


@_by_id(CROSS_MARKED)
def test_a_mark_for_another_rule_is_a_finding_of_that_rule(example: DocExample) -> None:
    """Marks for other codes are optional, but the ones written down must stay true."""
    from gradlint.api import lint_sources

    codes = {code for _, _, code in example.other_marks}
    findings = lint_sources(example.files, select=codes)
    reported = {(finding.display_path, finding.line, finding.code) for finding in findings}
    assert example.other_marks <= reported, _show(example, findings)


# -- the documents and the registry agree ----------------------------------------------------------


def _rule_docs() -> list:
    return sorted(path for path in docs.rules_dir().glob("*.md") if path.name != "README.md")


@pytest.mark.parametrize("code", CODES)
def test_every_rule_has_exactly_one_document(code: str) -> None:
    rule = RULES_BY_CODE[code]
    matches = sorted(path.name for path in docs.rules_dir().glob(f"{code}-*.md"))
    assert matches == [f"{code}-{rule.name}.md"]
    assert docs.doc_path(code) == docs.rules_dir() / f"{code}-{rule.name}.md"


def test_no_document_exists_for_an_unknown_rule() -> None:
    expected = {f"{rule.code}-{rule.name}.md" for rule in ALL_RULES}
    strays = [path.name for path in _rule_docs() if path.name not in expected]
    assert strays == []


def test_rule_documents_are_found_in_the_source_checkout() -> None:
    assert docs.rules_dir().is_dir()
    assert docs.doc_path("GL999") is None
    assert docs.rule_markdown("GL999") is None
    assert docs.examples("GL999") == []
    assert docs.sections("GL999") == []


@pytest.mark.parametrize("code", CODES)
def test_every_document_parses(code: str) -> None:
    docs.examples(code)  # raises DocError with the file and line of the faulty block


@pytest.mark.parametrize("code", CODES)
def test_document_title_is_the_code_and_the_name(code: str) -> None:
    rule = RULES_BY_CODE[code]
    lines = (docs.rule_markdown(code) or "").splitlines()
    assert lines[:1] == [f"# {code}: {rule.name}"]


@pytest.mark.parametrize("code", CODES)
def test_document_summary_is_the_registry_summary(code: str) -> None:
    rule = RULES_BY_CODE[code]
    lines = (docs.rule_markdown(code) or "").splitlines()
    first_paragraph = next((line for line in lines[1:] if line.strip()), None)
    assert first_paragraph == rule.summary


@pytest.mark.parametrize("code", CODES)
def test_document_has_the_required_sections_in_order(code: str) -> None:
    found = [title for title in docs.sections(code) if title in REQUIRED_SECTIONS]
    assert found == REQUIRED_SECTIONS


@pytest.mark.parametrize("code", CODES)
def test_document_table_gives_the_registry_severity_and_options(code: str) -> None:
    rule = RULES_BY_CODE[code]
    text = docs.rule_markdown(code) or ""
    rows = re.findall(r"^\|(.+)\|\s*$", text, flags=re.MULTILINE)
    assert len(rows) >= 3, "expected the | Severity | Options | Autofix | table under the summary"
    header = [cell.strip() for cell in rows[0].split("|")]
    values = [cell.strip() for cell in rows[2].split("|")]
    assert header == ["Severity", "Options", "Autofix"]
    assert values[0].split()[0] == rule.severity.label
    assert values[1] == (", ".join(option.name for option in rule.options) or "none")
    assert values[2] == (rule.fix or "none")


@pytest.mark.parametrize("code", CODES)
def test_options_section_documents_every_option_of_the_rule(code: str) -> None:
    rule = RULES_BY_CODE[code]
    body = docs.section(code, "Options") or ""
    if not rule.options:
        assert body.startswith("None."), "a rule without options says 'None.'"
        return
    assert f"[tool.gradlint.{code}]" in body
    for option in rule.options:
        assert f"`{option.name}`" in body, f"option {option.name} is not documented"
        assert re.search(rf"^{re.escape(option.name)} = ", body, flags=re.MULTILINE), (
            f"option {option.name} has no TOML example"
        )


@pytest.mark.parametrize("code", CODES)
def test_document_has_at_least_two_bad_and_two_good_examples(code: str) -> None:
    minimum = 1 if code in META_RULES else 2
    kinds = [example.kind for example in docs.examples(code)]
    assert kinds.count("bad") >= minimum
    assert kinds.count("good") >= minimum


@_by_id(ALL_EXAMPLES)
def test_example_options_are_options_of_the_rule(example: DocExample) -> None:
    known = {option.name: option for option in RULES_BY_CODE[example.code].options}
    for key, value in example.options.items():
        assert key in known, f"{key!r} is not an option of {example.code}"
        known[key].coerce(value)  # raises ValueError on a value of the wrong type


@_by_id(ALL_EXAMPLES)
def test_example_is_valid_python_unless_it_shows_a_parse_error(example: DocExample) -> None:
    for name, source in example.files.items():
        if name.endswith((".yaml", ".yml")):
            continue  # a config file shown beside the code (LightningCLI, Hydra)
        marked = example.expected.get(name, set())
        if example.code == "GL000" and marked:
            with pytest.raises(SyntaxError) as raised:
                compile(source, name, "exec")
            assert {raised.value.lineno} == marked, "GL000 marks the line Python reports"
            with pytest.raises(libcst.ParserSyntaxError):
                libcst.parse_module(source)
        else:
            compile(source, name, "exec")
            libcst.parse_module(source)


# -- how a document is read -------------------------------------------------------------------------

FENCE = "```"

SAMPLE = textwrap.dedent(
    f"""\
    # GL104: ineffective-clip-threshold

    ## Example

    {FENCE}python bad max-norm-limit=100
    # file: train.py
    import torch

    torch.nn.utils.clip_grad_norm_(params, 250.0)  # GL104
    # file: model.py
    x = 1  # GL101
    y = 2  # GL101 GL104
    {FENCE}

    {FENCE}python
    ## not a heading: inside a block that is not an example
    {FENCE}

    ## Use instead

    {FENCE}python good
    clip_grad_norm_(params, 1.0)
    {FENCE}

    {FENCE}toml
    [tool.gradlint.GL104]
    max-norm-limit = 1000
    {FENCE}
    """
)


def test_a_document_is_read_as_sections_and_examples() -> None:
    assert docs.parse_sections(SAMPLE) == ["Example", "Use instead"]
    bad, good = docs.parse_examples("GL104", SAMPLE)
    assert (bad.test_id, good.test_id) == ("GL104-bad-1", "GL104-good-1")
    assert list(bad.files) == ["train.py", "model.py"]
    assert bad.files["train.py"].splitlines()[2] == "torch.nn.utils.clip_grad_norm_(params, 250.0)  # GL104"
    assert bad.expected == {"train.py": {3}, "model.py": {2}}
    assert bad.expected_findings == {("train.py", 3), ("model.py", 2)}
    assert bad.options == {"max-norm-limit": 100}
    assert good.files == {"example.py": "clip_grad_norm_(params, 1.0)\n"}
    assert good.expected == {"example.py": set()} and good.options == {}


def test_a_block_without_a_file_line_is_example_py_and_later_files_are_named() -> None:
    text = f"{FENCE}python bad\nstep()  # GL101\n# file: helpers.py\nstep()  # GL101\n{FENCE}\n"
    (example,) = docs.parse_examples("GL101", text)
    assert list(example.files) == ["example.py", "helpers.py"]
    assert example.expected == {"example.py": {1}, "helpers.py": {1}}


def test_a_mark_must_end_the_line_and_name_the_code() -> None:
    text = (
        f"{FENCE}python bad\n"
        "a()  # noqa: GL101\n"
        "b()  # gradlint: ignore[GL101]  # GL001\n"
        "c()  # GL101, GL108\n"
        "d = '# GL101 not a mark'\n"
        f"{FENCE}\n"
    )
    assert docs.parse_examples("GL001", text)[0].expected == {"example.py": {2}}
    assert docs.parse_examples("GL108", text)[0].expected == {"example.py": {3}}
    assert docs.parse_examples("GL001", text)[0].other_marks == {("example.py", 3, "GL101"), ("example.py", 3, "GL108")}


@pytest.mark.parametrize(
    ("block", "problem"),
    [
        (f"{FENCE}python bda\nx()  # GL101\n{FENCE}\n", "unknown example kind"),
        (f"{FENCE}python bad\nx()\n{FENCE}\n", "marks no line"),
        (f"{FENCE}python good\nx()  # GL101\n{FENCE}\n", "good example marks"),
        (f"{FENCE}python bad limit\nx()  # GL101\n{FENCE}\n", "key=value"),
        (f"{FENCE}python bad limit=abc\nx()  # GL101\n{FENCE}\n", "TOML value"),
        (f"{FENCE}python bad\n# file: a.py\nx()  # GL101\n# file: a.py\n{FENCE}\n", "appears twice"),
        (f"{FENCE}python bad\nx()  # GL101\n", "never closed"),
    ],
)
def test_a_malformed_example_is_an_error_not_a_silent_pass(block: str, problem: str) -> None:
    with pytest.raises(DocError, match=problem):
        docs.parse_examples("GL101", block)
