"""`open_input`: the one door for inputs (local files, video types, self-contained demuxers)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bad_media import _playlist_text, good_clip
from endoveil.cases import DEFAULT_PATTERNS
from endoveil.errors import MediaError
from endoveil.live.sources import FileSource, SourceError
from endoveil.media.inputs import VIDEO_SUFFIXES, open_input


def test_the_picker_and_the_door_list_the_same_types() -> None:
    assert {p.removeprefix("*") for p in DEFAULT_PATTERNS} == set(VIDEO_SUFFIXES)


def test_a_name_that_looks_like_an_ffmpeg_protocol_is_read_as_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good_clip(tmp_path / "concat:x.mp4")
    monkeypatch.chdir(tmp_path)
    with open_input(Path("concat:x.mp4")) as container:
        assert container.streams.video


def test_a_fifo_is_refused_rather_than_waited_on(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.mp4"
    os.mkfifo(fifo)
    with pytest.raises(MediaError, match="not a regular file"):
        open_input(fifo)


@pytest.mark.parametrize("name", ["evil.m3u8", "evil.mp4"])
def test_the_live_file_source_refuses_playlists(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_text(_playlist_text(tmp_path), encoding="utf-8")
    source = FileSource(path, realtime=False)
    with pytest.raises(SourceError):
        source.open()
