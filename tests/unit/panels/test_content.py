"""Content parsing: text, SRT, VTT and JSON become contiguous, non-empty segments."""

from __future__ import annotations

import json

import pytest

from personae.errors import InvalidInput
from personae.panels.content import (
    FORMATS,
    MAX_CONTENT_CHARS,
    MAX_SEGMENTS,
    Segment,
    SplitRule,
    detect_format,
    parse_content,
    split_rule,
)

SRT = """1
00:00:01,000 --> 00:00:02,500
<i>Hello there,</i>
general Kenobi.

2
00:00:03,000 --> 00:00:04,000
<b>  </b>

3
00:01:02,345 --> 01:00:00,000
{\\an8}Second <font color="red">line</font>
"""

VTT = """WEBVTT - A talk
Kind: captions

NOTE this block is a comment
that spans two lines

intro
00:00:01.000 --> 00:00:02.500 align:start
<v Roger>Hello <b>there</b>,
everyone

00:00:03.000 --> 00:00:04.000
<i> </i>

00:02.000 --> 00:03.250
Fish &amp; chips
"""


def _error(text: str, fmt: str | None = None, **kwargs: object) -> str:
    with pytest.raises(InvalidInput) as caught:
        parse_content(text, fmt, **kwargs)  # type: ignore[arg-type]
    return caught.value.message


def _texts(segments: list[Segment]) -> list[str]:
    assert [s.index for s in segments] == list(range(len(segments)))
    return [s.text for s in segments]


# -- detection ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("talk.srt", "srt"),
        ("talk.VTT", "vtt"),
        ("segments.json", "json"),
        ("notes.txt", "text"),
        ("notes.md", "text"),
        ("report.docx", "text"),
    ],
)
def test_extension_decides_before_content(filename: str, expected: str) -> None:
    assert detect_format("WEBVTT\n", filename) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (VTT, "vtt"),
        ("\ufeffWEBVTT\n\n00:01.000 --> 00:02.000\nhi\n", "vtt"),
        (SRT, "srt"),
        (SRT.replace("\n", "\r\n"), "srt"),
        ('  ["one", "two"]', "json"),
        ('{"segments": []}', "json"),
        ("[Music] not json at all", "text"),
        ("Just some prose. Nothing else.", "text"),
        ("1\nnot a timestamp\n", "text"),
    ],
)
def test_content_is_sniffed_without_filename(text: str, expected: str) -> None:
    assert detect_format(text) == expected
    assert detect_format(text, "no_extension") == expected


def test_formats_are_listed() -> None:
    assert FORMATS == ("text", "srt", "vtt", "json")


# -- plain text --------------------------------------------------------------------------


SEVEN = "One is here. Two is here. Three is here. Four is here. Five is here. Six. Seven."


def test_text_groups_sentences_three_per_segment_by_default() -> None:
    segments = parse_content(SEVEN)
    assert _texts(segments) == [
        "One is here. Two is here. Three is here.",
        "Four is here. Five is here. Six.",
        "Seven.",
    ]
    assert all(s.start_ms is None and s.end_ms is None for s in segments)


def test_text_sentences_per_segment_is_configurable() -> None:
    segments = parse_content(SEVEN, rule=split_rule(sentences_per_segment=2))
    assert [len(s.text.split(". ")) for s in segments] == [2, 2, 2, 1]


def test_target_chars_packs_sentences_without_cutting_them() -> None:
    sentence = "This sentence is exactly forty chars ok."
    assert len(sentence) == 40
    long = (
        "This single sentence is a lot longer than the ninety character target, so it stands alone."
    )
    text = " ".join([sentence, sentence, sentence, long, sentence])
    segments = parse_content(text, rule=split_rule(target_chars=90))
    assert _texts(segments) == [f"{sentence} {sentence}", sentence, long, sentence]
    assert all(len(s.text) <= 90 for s in segments if s.text != long)


def test_target_chars_wins_over_sentences_per_segment() -> None:
    rule = SplitRule(sentences_per_segment=1, target_chars=1000)
    assert _texts(parse_content(SEVEN, rule=rule)) == [SEVEN]


def test_paragraph_breaks_always_end_a_segment() -> None:
    text = "First one. First two.\n\n  \nSecond one.\r\n\r\nThird one. Third two. Third three."
    assert _texts(parse_content(text, rule=SplitRule(sentences_per_segment=5))) == [
        "First one. First two.",
        "Second one.",
        "Third one. Third two. Third three.",
    ]


def test_hard_wrapped_lines_are_one_paragraph() -> None:
    text = "This sentence is wrapped\nacross two lines. And another\none follows."
    assert _texts(parse_content(text, rule=split_rule(1))) == [
        "This sentence is wrapped across two lines.",
        "And another one follows.",
    ]


def test_abbreviations_do_not_end_a_sentence() -> None:
    text = "Dr. Smith met Mr. Jones at 3 p.m. today. They talked. It went well."
    assert _texts(parse_content(text, rule=split_rule(1))) == [
        "Dr. Smith met Mr. Jones at 3 p.m. today.",
        "They talked.",
        "It went well.",
    ]


def test_hindi_danda_ends_a_sentence() -> None:
    text = "यह पहला वाक्य है। यह दूसरा वाक्य है। क्या यह तीसरा है?"
    segments = parse_content(text, rule=split_rule(1), language="hi-IN")
    assert _texts(segments) == ["यह पहला वाक्य है।", "यह दूसरा वाक्य है।", "क्या यह तीसरा है?"]


def test_unsupported_language_falls_back_to_english() -> None:
    assert len(parse_content(SEVEN, rule=split_rule(1), language="sw-KE")) == 7


def test_long_paragraph_is_split_like_a_short_one() -> None:
    sentence = "Dr. Smith paid $3.50 for the U.S. edition. Was it worth it? Yes! "
    text = sentence * 400  # far longer than one pysbd window
    segments = parse_content(text, rule=split_rule(1))
    assert len(segments) == 1200
    assert segments[0].text == "Dr. Smith paid $3.50 for the U.S. edition."
    assert " ".join(s.text for s in segments) == text.strip()


def test_bom_is_stripped() -> None:
    assert _texts(parse_content("\ufeffHello world.")) == ["Hello world."]


# -- SRT ---------------------------------------------------------------------------------


def test_srt_cues_are_joined_untagged_and_timed() -> None:
    segments = parse_content(SRT)
    assert segments == [
        Segment(0, "Hello there, general Kenobi.", 1000, 2500),
        Segment(1, "Second line", 62_345, 3_600_000),
    ]


def test_srt_with_crlf_and_bom() -> None:
    segments = parse_content("\ufeff" + SRT.replace("\n", "\r\n"), "srt")
    assert _texts(segments) == ["Hello there, general Kenobi.", "Second line"]


LOOKS_LIKE_HTML = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'


def _srt(*cues: str) -> str:
    return "".join(f"{n}\n00:00:0{n},000 --> 00:00:0{n},500\n{text}\n\n"
                   for n, text in enumerate(cues, start=1))


def _vtt(*cues: str) -> str:
    return "WEBVTT\n\n" + "".join(f"00:0{n}.000 --> 00:0{n}.500\n{text}\n\n"
                                    for n, text in enumerate(cues, start=1))


def test_srt_keeps_words_that_only_look_like_markup() -> None:
    spoken = [LOOKS_LIKE_HTML, "if a <b and c> d", "<br> <span>x</span> <I onclick=y>z",
              "<3 <bold> <font", "{not an override} \\ {i}"]
    assert _texts(parse_content(_srt(*spoken), "srt")) == spoken


def test_srt_strips_its_own_formatting_in_any_case() -> None:
    cue = ('<I>Hi</I> <B>there</b> <u>you</U> <FONT color="#ff0000">in</Font> '
           '<font>red</font>{\\an8}{\\pos(10,20)}!')
    assert _texts(parse_content(_srt(cue), "srt")) == ["Hi there you in red!"]


# -- WebVTT ------------------------------------------------------------------------------


def test_vtt_skips_header_notes_and_blank_cues_and_strips_voice_tags() -> None:
    segments = parse_content(VTT)
    assert segments == [
        Segment(0, "Hello there, everyone", 1000, 2500),
        Segment(1, "Fish & chips", 2000, 3250),
    ]


def test_vtt_by_filename() -> None:
    assert len(parse_content(VTT, filename="talk.vtt")) == 2


def test_vtt_keeps_words_that_only_look_like_markup() -> None:
    spoken = [LOOKS_LIKE_HTML, "<br> <span>x</span> <i onclick=y>z", "<B>caps</B> <vox> <c",
              "a < b > c"]
    assert _texts(parse_content(_vtt(*spoken), "vtt")) == spoken


def test_vtt_strips_cue_tags_with_classes_and_timestamps() -> None:
    cue = ("<c.yellow.bg_blue>Hi</c> <i.loud>there</i> <b>you</b> <u>in</u> "
           "<v.first Ann Lee>the</v> <lang en-GB>red</lang> <ruby>car<rt>kar</rt></ruby>"
           "<00:00:01.500>, <00:02.250>done")
    assert _texts(parse_content(_vtt(cue), "vtt")) == ["Hi there you in the red carkar, done"]


def test_vtt_escaped_brackets_become_text_and_stay() -> None:
    segments = parse_content(_vtt("&lt;b&gt;bold&lt;/b&gt; &amp; <b>real</b>"), "vtt")
    assert _texts(segments) == ["<b>bold</b> & real"]


# -- JSON --------------------------------------------------------------------------------


def test_json_list_of_strings_skips_blank_items() -> None:
    segments = parse_content(json.dumps([" one ", "", "  ", "two"]))
    assert segments == [Segment(0, "one"), Segment(1, "two")]


def test_json_objects_with_seconds_and_milliseconds() -> None:
    items = [
        {"text": "a", "start": 1.5, "end": 2},
        {"text": "b", "start_ms": 2000, "end_ms": 3001},
        {"text": "c"},
        {"text": "d", "start": 0.0015},
    ]
    assert parse_content(json.dumps(items)) == [
        Segment(0, "a", 1500, 2000),
        Segment(1, "b", 2000, 3001),
        Segment(2, "c"),
        Segment(3, "d", 2, None),
    ]


def test_json_object_with_segments_key() -> None:
    data = {"title": "x", "segments": [{"text": " hi ", "start": 0, "end": 1}, "there"]}
    segments = parse_content(json.dumps(data), "json")
    assert segments == [Segment(0, "hi", 0, 1000), Segment(1, "there")]


# -- split_rule --------------------------------------------------------------------------


def test_split_rule_defaults_and_values() -> None:
    assert split_rule() == SplitRule(3, None)
    assert split_rule(1, 50) == SplitRule(1, 50)
    assert split_rule(50, 20_000) == SplitRule(50, 20_000)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"sentences_per_segment": 0}, "sentences_per_segment"),
        ({"sentences_per_segment": 51}, "sentences_per_segment"),
        ({"sentences_per_segment": True}, "sentences_per_segment"),
        ({"target_chars": 49}, "target_chars"),
        ({"target_chars": 20_001}, "target_chars"),
        ({"target_chars": 100.0}, "target_chars"),
    ],
)
def test_split_rule_rejects_out_of_range(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInput, match=field) as caught:
        split_rule(**kwargs)  # type: ignore[arg-type]
    assert caught.value.details == {"field": field}


def test_parse_content_validates_a_hand_built_rule() -> None:
    assert "sentences_per_segment" in _error(SEVEN, rule=SplitRule(sentences_per_segment=0))


# -- errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fmt", "fragment"),
    [
        ("1\nnonsense\nhello\n", "srt", "srt: could not parse: "),
        (
            "1\n00:00:03,000 --> 00:00:02,000\nbackwards\n",
            "srt",
            "srt: cue 1: ends at 2000 ms, before it starts at 3000 ms",
        ),
        ("no header here\n", "vtt", "vtt: could not parse: "),
        ("WEBVTT\n\n00:00:0x.000 --> 00:00:02.000\nbad time\n", "vtt", "vtt: could not parse: "),
        (
            "WEBVTT\n\nlate\n00:00:05.000 --> 00:00:04.000\nbackwards\n",
            "vtt",
            "vtt: cue 'late': ends at 4000 ms",
        ),
        ("[1, 2", "json", "json: could not parse: "),
        ('"just a string"', "json", "json: expected a list of segments"),
        ('{"items": []}', "json", "json: expected a list of segments"),
        (
            '["a", "b", "c", {"start": 1}]',
            "json",
            "json: item 3: 'text' must be a non-empty string",
        ),
        ('[{"text": 5}]', "json", "json: item 0: 'text' must be a non-empty string"),
        ('["a", 7]', "json", "json: item 1: expected a string or an object with 'text'"),
        ('[{"text": "a", "start": "1.0"}]', "json", "'start' must be a number of seconds"),
        ('[{"text": "a", "end": true}]', "json", "'end' must be a number of seconds"),
        ('[{"text": "a", "start": NaN}]', "json", "'start' must be a number of seconds"),
        ('[{"text": "a", "start_ms": 1.5}]', "json", "'start_ms' must be a whole number"),
        ('[{"text": "a", "start": -1}]', "json", "'start' must not be negative"),
        ('[{"text": "a", "start": 1, "start_ms": 1}]', "json", "give 'start' or 'start_ms'"),
        ('[{"text": "a", "start": 2, "end": 1}]', "json", "json: item 0: ends at 1000 ms"),
        ("", None, "content is empty: no segment has any text"),
        (" \n\n \t\n", "text", "content is empty: no segment has any text"),
        ('["", "  "]', None, "content is empty: no segment has any text"),
        ("WEBVTT\n", None, "content is empty: no segment has any text"),
        ("1\n00:00:01,000 --> 00:00:02,000\n<i> </i>\n", None, "content is empty"),
        ("hello", "docx", "unknown format 'docx'; use one of text, srt, vtt, json"),
    ],
)
def test_errors_say_what_and_where(text: str, fmt: str | None, fragment: str) -> None:
    assert fragment in _error(text, fmt)


def test_too_many_segments() -> None:
    items = [f"item {i}" for i in range(MAX_SEGMENTS + 1001)]
    message = _error(json.dumps(items))
    assert message == "content has 6001 segments; the limit is 5000"


def test_exactly_the_segment_limit_is_fine() -> None:
    assert len(parse_content(json.dumps(["x"] * MAX_SEGMENTS))) == MAX_SEGMENTS


def test_too_many_characters() -> None:
    message = _error("a" * 2_100_000)
    assert message == "content is 2,100,000 characters; the limit is 2,000,000"
    assert MAX_CONTENT_CHARS == 2_000_000
