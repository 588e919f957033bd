"""Reply audio files: written whole, owner only, expired by a clock, swept clean."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from personae.errors import NotFound
from personae.voice.clips import TEMP_GRACE_SECONDS, ClipStore

TTL = 100.0


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> ClipStore:
    return ClipStore(tmp_path / "audio", TTL, clock)


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def read(store: ClipStore, user: str, clip_id: str) -> tuple[bytes, str, int]:
    file, media_type, size = store.open(user, clip_id)
    with file:
        return file.read(), media_type, size


def test_a_saved_clip_reads_back_with_its_type_size_and_expiry(store: ClipStore,
                                                                clock: Clock) -> None:
    clip = store.save("alice", "s1", b"RIFF-some-audio", "wav")
    assert len(clip.id) == 32 and clip.media_type == "audio/wav"
    assert clip.bytes == 15 and clip.expires_at == clock.now + TTL
    assert read(store, "alice", clip.id) == (b"RIFF-some-audio", "audio/wav", 15)
    [path] = files_under(store.root)
    assert path == store.root / "alice" / "s1" / f"{clip.id}.wav"
    assert store.save("alice", None, b"x", "mp3").media_type == "audio/mpeg"
    assert (store.root / "alice" / "_").is_dir()


def test_another_users_clip_is_not_found(store: ClipStore) -> None:
    clip = store.save("alice", "s1", b"audio", "wav")
    with pytest.raises(NotFound):
        store.open("bob", clip.id)


@pytest.mark.parametrize("clip_id", ["../x", "../../alice/s1/x", "*", "a" * 31, "A" * 32,
                                     "0" * 31 + "/", "", "0" * 33])
def test_ids_that_are_not_32_hex_are_not_found(store: ClipStore, clip_id: str) -> None:
    store.save("alice", "s1", b"audio", "wav")
    with pytest.raises(NotFound):
        store.open("alice", clip_id)


def test_an_expired_clip_is_not_found_and_the_sweep_removes_it(store: ClipStore,
                                                                clock: Clock) -> None:
    old = store.save("alice", "s1", b"old", "wav")
    clock.now += TTL / 2
    young = store.save("alice", "s2", b"young", "wav")
    clock.now += TTL / 2
    with pytest.raises(NotFound):
        store.open("alice", old.id)
    assert store.sweep() == 1
    assert files_under(store.root) == [store.root / "alice" / "s2" / f"{young.id}.wav"]
    assert not (store.root / "alice" / "s1").exists()  # empty folders go too
    clock.now += TTL
    assert store.sweep() == 1
    assert list(store.root.iterdir()) == []


def test_the_sweep_removes_leftover_temporary_files_but_not_fresh_ones(
        store: ClipStore, clock: Clock) -> None:
    store.save("alice", "s1", b"audio", "wav")
    folder = store.root / "alice" / "s1"
    crashed = folder / ".0123.wav.ab12.part"
    crashed.write_bytes(b"half")
    os.utime(crashed, (clock.now - TEMP_GRACE_SECONDS, clock.now - TEMP_GRACE_SECONDS))
    writing = folder / ".4567.wav.cd34.part"
    writing.write_bytes(b"being written")
    os.utime(writing, (clock.now, clock.now))
    assert store.sweep() == 1
    assert not crashed.exists() and writing.exists()


def test_removing_a_session_removes_only_its_clips(store: ClipStore) -> None:
    gone = store.save("alice", "s1", b"a", "wav")
    kept = store.save("alice", "s2", b"b", "wav")
    other = store.save("bob", "s1", b"c", "wav")
    store.remove_session("alice", "s1")
    with pytest.raises(NotFound):
        store.open("alice", gone.id)
    assert read(store, "alice", kept.id)[0] == b"b"
    assert read(store, "bob", other.id)[0] == b"c"


def test_a_sweep_while_a_clip_is_being_served_does_not_cut_it_short(
        store: ClipStore, clock: Clock) -> None:
    data = os.urandom(256 * 1024)
    clip = store.save("alice", "s1", data, "wav")
    file, _, size = store.open("alice", clip.id)
    with file:
        first = file.read(1000)
        clock.now += TTL
        assert store.sweep() == 1
        assert files_under(store.root) == []
        rest = file.read()
    assert first + rest == data and size == len(data)


def test_ids_unsafe_as_folder_names_are_hashed_into_one_component(store: ClipStore) -> None:
    clip = store.save("../evil", "../../s", b"a", "wav")
    [path] = files_under(store.root)
    assert path.parent.parent.parent == store.root
    assert read(store, "../evil", clip.id)[0] == b"a"
    store.remove_session("../evil", "../../s")
    assert files_under(store.root) == []


def test_a_sweep_of_a_missing_root_is_a_no_op(tmp_path: Path) -> None:
    assert ClipStore(tmp_path / "nowhere", TTL).sweep() == 0
