"""Suppression comments: what counts as a directive, what it suppresses, and what is left unused."""

from __future__ import annotations

import textwrap

import pytest

from gradlint import suppress
from gradlint.suppress import Suppression, parse_suppressions


def parse(text: str):
    return parse_suppressions(textwrap.dedent(text))


# --- the syntax -------------------------------------------------------------------------------


def test_bracketed_gradlint_ignore_suppresses_only_the_named_code_on_its_line():
    s = parse("optimizer.step()  # gradlint: ignore[GL101]\n")
    assert s.is_suppressed("GL101", [1])
    assert not s.is_suppressed("GL103", [1])
    assert not s.is_suppressed("GL101", [2])


def test_a_bracket_may_name_several_codes_separated_by_commas():
    s = parse("clip()  # gradlint: ignore[GL101, GL103]\n")
    assert s.by_line[1].codes == frozenset({"GL101", "GL103"})
    assert s.by_line[1].kind == "gradlint"


def test_bare_gradlint_ignore_suppresses_every_code_on_its_line():
    s = parse("optimizer.step()  # gradlint: ignore\n")
    assert s.by_line[1].codes is None
    assert s.is_suppressed("GL101", [1])
    assert s.is_suppressed("GL111", [1])


def test_noqa_with_a_gl_code_is_a_gradlint_suppression():
    s = parse("optimizer.step()  # noqa: GL101\n")
    assert s.by_line[1] == Suppression(line=1, column=19, codes=frozenset({"GL101"}), kind="noqa")
    assert s.is_suppressed("GL101", [1])


def test_noqa_keeps_only_the_gl_codes_of_a_mixed_list():
    s = parse("x = 1  # noqa: E501, GL104\n")
    assert s.by_line[1].codes == frozenset({"GL104"})


@pytest.mark.parametrize("comment", ["# noqa", "# noqa: E501", "# noqa: E501, F401", "# NOQA"])
def test_noqa_without_a_gl_code_belongs_to_other_tools_and_suppresses_nothing(comment):
    s = parse(f"optimizer.step()  {comment}\n")
    assert s.by_line == {}
    assert not s.is_suppressed("GL101", [1])


def test_keywords_are_case_insensitive_and_codes_are_upper_cased():
    s = parse("a()  # GradLint: IGNORE[gl101]\nb()  # NoQA: gl103\n")
    assert s.by_line[1].codes == frozenset({"GL101"})
    assert s.by_line[2].codes == frozenset({"GL103"})
    assert s.is_suppressed("gl101", [1])


def test_a_reason_may_follow_the_directive():
    s = parse("optimizer.step()  # gradlint: ignore[GL101] -- the trainer clips in a hook\n")
    assert s.by_line[1].codes == frozenset({"GL101"})


def test_a_reason_after_a_bare_ignore_keeps_it_bare():
    s = parse("optimizer.step()  # gradlint: ignore -- clipped by the trainer\n")
    assert s.by_line[1].codes is None


def test_the_directive_may_follow_another_tools_comment():
    s = parse("x = f()  # type: ignore[attr-defined]  # gradlint: ignore[GL104]\n")
    assert s.by_line[1].codes == frozenset({"GL104"})
    assert s.by_line[1].column == 40


def test_two_directives_in_one_comment_make_one_suppression_with_both_codes():
    s = parse("x = f()  # noqa: GL101  # gradlint: ignore[GL103]\n")
    assert s.by_line[1].codes == frozenset({"GL101", "GL103"})
    assert s.by_line[1].kind == "gradlint"


def test_words_that_only_start_like_the_directive_are_not_directives():
    s = parse("x = 1  # gradlint: ignored because of X\ny = 2  # gradlint: ignore-files\n")
    assert s.by_line == {}
    assert not s.file_ignored


def test_suppression_position_is_the_comment_line_and_its_1_based_column():
    s = parse_suppressions("\n\n    step()  # gradlint: ignore[GL101]\n")
    assert (s.by_line[3].line, s.by_line[3].column) == (3, 13)


# --- real comments only ------------------------------------------------------------------------


def test_a_directive_inside_a_string_is_not_a_comment():
    s = parse(
        '''
        message = "optimizer.step()  # gradlint: ignore[GL101]"
        doc = """
        # noqa: GL101
        """
        '''
    )
    assert s.by_line == {}


def test_ignore_file_inside_a_docstring_does_not_skip_the_file():
    s = parse('"""\n# gradlint: ignore-file\n"""\n')
    assert not s.file_ignored


def test_a_file_that_does_not_tokenize_still_yields_its_suppressions():
    source = "def f(:\n    optimizer.step()  # gradlint: ignore[GL101]\nx = '''unterminated\n"
    s = parse_suppressions(source)
    assert s.by_line[2].codes == frozenset({"GL101"})


def test_a_file_that_does_not_tokenize_can_still_be_ignored_whole():
    s = parse_suppressions("# gradlint: ignore-file\nx = '''never closed\n")
    assert s.file_ignored


# --- file-level -------------------------------------------------------------------------------


def test_ignore_file_on_its_own_line_anywhere_skips_the_file():
    s = parse(
        """
        import torch

        # gradlint: ignore-file -- vendored code
        loss.backward()
        """
    )
    assert s.file_ignored
    assert s.is_suppressed("GL107", [5])


def test_ignore_file_as_a_trailing_comment_does_not_skip_the_file():
    s = parse("loss.backward()  # gradlint: ignore-file\n")
    assert not s.file_ignored
    assert s.by_line == {}


# --- the fast path -----------------------------------------------------------------------------


def test_source_without_either_keyword_is_not_tokenized(monkeypatch):
    def explode(*args, **kwargs):
        raise AssertionError("tokenize should not run")

    monkeypatch.setattr(suppress.tokenize, "generate_tokens", explode)
    s = parse_suppressions("import torch\nloss.backward()  # a plain comment\n" * 1000)
    assert s.by_line == {} and not s.file_ignored


def test_source_with_a_keyword_is_tokenized(monkeypatch):
    calls = []
    real = suppress.tokenize.generate_tokens
    monkeypatch.setattr(suppress.tokenize, "generate_tokens", lambda readline: calls.append(1) or real(readline))
    parse_suppressions("x = 1  # NOQA: GL101\n")
    assert calls


# --- multi-line findings and unused suppressions ----------------------------------------------


def test_a_finding_spanning_several_lines_is_suppressed_by_a_comment_on_any_of_them():
    s = parse(
        """
        torch.nn.utils.clip_grad_norm_(
            model.parameters(),
            max_norm=0,  # gradlint: ignore[GL104]
        )
        """
    )
    assert s.is_suppressed("GL104", range(2, 6))
    assert not s.is_suppressed("GL104", range(6, 8))


def test_a_used_suppression_is_not_reported_as_unused():
    s = parse("step()  # gradlint: ignore[GL101]\n")
    s.is_suppressed("GL101", [1])
    assert s.unused() == []


def test_a_suppression_that_suppressed_nothing_is_unused():
    s = parse("step()  # noqa: GL101\n")
    s.is_suppressed("GL103", [1])
    assert s.unused() == [Suppression(1, 9, frozenset({"GL101"}), "noqa")]


def test_unused_reports_each_unused_code_of_a_partly_used_suppression():
    s = parse("step()  # gradlint: ignore[GL101, GL103, GL104]\n")
    s.is_suppressed("GL103", [1])
    [unused] = s.unused()
    assert unused.codes == frozenset({"GL101", "GL104"})
    assert unused.line == 1


def test_a_bare_ignore_is_unused_only_when_nothing_was_suppressed_on_its_line():
    s = parse("a()  # gradlint: ignore\nb()  # gradlint: ignore\n")
    s.is_suppressed("GL109", [1])
    assert [u.line for u in s.unused()] == [2]
    assert s.unused()[0].codes is None


def test_unused_can_skip_codes_of_rules_that_did_not_run():
    s = parse("step()  # gradlint: ignore[GL101, GL104]\n")
    [unused] = s.unused(enabled={"GL101"})
    assert unused.codes == frozenset({"GL101"})


def test_unused_lists_suppressions_in_line_order():
    s = parse("a()  # noqa: GL104\nb()  # gradlint: ignore[GL101]\nc()  # gradlint: ignore\n")
    assert [u.line for u in s.unused()] == [1, 2, 3]
