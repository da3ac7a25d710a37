import pytest

from vscr_cli.errors import TagError
from vscr_cli.datasets import load_tags
from vscr_cli.tags import read_tags_csv, require_tags


def test_csv_tags_by_name_or_id(tmp_path):
    path = tmp_path / "tags.csv"
    path.write_text("video,tags\nclip1,dog-running;adult-walking\nclip2,77\nclip3,\n")
    assert read_tags_csv(path) == {"clip1": (18, 77), "clip2": (77,), "clip3": ()}
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())  # a spreadsheet's byte-order mark
    assert read_tags_csv(path) == {"clip1": (18, 77), "clip2": (77,), "clip3": ()}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("video,tags\nclip,dog-swimming\n", r"tags.csv:2: unknown actor-action tag 'dog-swimming'"),
        ("video,tags\nclip,14\n", r"tags.csv:2: tag '14' is not one of the 43"),
        ("video,tags\nclip,11\nclip,12\n", r"tags.csv:3: video 'clip' is listed twice"),
        ("name,label\nclip,11\n", r"expected a header 'video,tags'"),
        ("video,tags\nclip,11\n\nbare\n", r"tags.csv:4: expected 2 fields .* found 1 \(a video without tags is written 'VIDEO,'\)"),
        ("video,tags\nclip,11,12\n", r"tags.csv:2: expected 2 fields .* found 3$"),
        ("video,tags\nclip,11\nclip2," + "x" * 200_000 + "\n", r"tags.csv:3: malformed CSV \(field larger than field limit"),
    ],
)
def test_csv_errors_name_file_and_line(tmp_path, text, message):
    path = tmp_path / "tags.csv"
    path.write_text(text)
    with pytest.raises(TagError, match=message):
        read_tags_csv(path)


def test_missing_tags_and_files(tmp_path):
    with pytest.raises(TagError, match="cannot read tags"):
        load_tags(tmp_path / "absent.csv")
    with pytest.raises(TagError, match=r"tags.csv: no tags for video\(s\) b, c"):
        require_tags(["a", "b", "c"], {"a": (11,)}, "tags.csv")


def test_tags_from_an_a2d_root_match_the_csv(synth):
    assert load_tags(synth.root) == load_tags(synth.root / "tags.csv")


def test_davis_dev_tags(davis_dev):
    tags = load_tags(davis_dev / "tags.csv")
    assert tags["cows"] == () and tags["dog"] == (78,) and tags["parkour"] == (15,)


def test_text_files_are_read_up_to_a_limit(tmp_path, monkeypatch):
    from vscr_cli import tags

    monkeypatch.setattr(tags, "TEXT_LIMIT", 32)
    path = tmp_path / "tags.csv"
    path.write_text("video,tags\nclip,11\n")
    assert read_tags_csv(path) == {"clip": (11,)}
    path.write_text("video,tags\n" + "clip,11\n" * 4)
    with pytest.raises(TagError, match=r"tags.csv: larger than 0 MiB, too large for tags"):
        read_tags_csv(path)
