"""A reply from a model that does not handle the persona's language carries a warning."""

from __future__ import annotations

from personae.conversations.events import Done
from personae.providers.fake import ScriptedLLM
from tests.support.chat import Chat


async def _reply(chat: Chat, persona_id: str) -> Done:
    session, opened = await chat.runtime.conversations.open(chat.alice, persona_id)
    assert all("warnings" not in event.message.meta for event in opened)  # the greeting
    events = [e async for e in await chat.runtime.conversations.send(chat.alice, session.id,
                                                                      "hello")]
    done = events[-1]
    assert isinstance(done, Done)
    return done


async def test_a_hindi_persona_on_an_english_only_model_is_warned(chat: Chat) -> None:
    chat.runtime.providers.register("fake", ScriptedLLM("fake",
                                                        languages=frozenset({"en"})))
    done = await _reply(chat, "tina")
    assert done.message.status == "complete" and done.message.content == "hello"
    assert done.message.meta["warnings"] == [
        "the fake model fake-model does not handle Hindi (hi) well; configure an external "
        "provider (see README: Embedded models) for this persona"]
    saved = await chat.runtime.conversations.last_message(chat.alice, done.message.session_id)
    assert saved is not None and saved.meta["warnings"] == done.message.meta["warnings"]


async def test_no_warning_when_the_language_is_handled_or_unknown(chat: Chat) -> None:
    chat.runtime.providers.register("fake", ScriptedLLM("fake", languages=frozenset({"en"})))
    assert "warnings" not in (await _reply(chat, "mohit")).message.meta
    chat.runtime.providers.register("fake", ScriptedLLM("fake"))  # languages unknown
    assert "warnings" not in (await _reply(chat, "tina")).message.meta
