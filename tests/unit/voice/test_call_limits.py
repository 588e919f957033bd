"""A voice call's turns pass the edge's admission: a refused turn is an error event and
the call goes on."""

from __future__ import annotations

import json

from personae.config import Settings
from personae.ops.ratelimit import Caller, RateLimiter, RouteClass
from personae.voice.call import VoiceCall
from tests.unit.voice.test_call import Rig, greeted, rig  # noqa: F401  (the fixture)


async def test_a_refused_voice_turn_is_an_error_event_and_the_call_goes_on(rig: Rig  # noqa: F811
                                                                           ) -> None:
    limiter = RateLimiter(Settings(rate_limits={"member": {"chat": "1/minute"}}))
    await limiter.open()
    alice = Caller("key:alice", "member")

    async def admit() -> None:
        await limiter.hit(alice, RouteClass.chat)

    session, _ = await rig.runtime.conversations.open(rig.alice, "mohit")
    call = VoiceCall(rig.runtime.conversations, rig.runtime.speech, rig.runtime.settings,
                     rig.alice, session.id, rig.send_event, rig.send_audio, before_turn=admit)
    call.speaker.clock = rig.clock
    try:
        await call.start()
        await greeted(rig)
        rig.llm.queue("The first answer.")
        await call.receive_text(json.dumps({"type": "message", "content": "hello"}))
        await rig.until(lambda e: e["type"] == "done")
        rig.clock.now += 60
        await call.receive_text(json.dumps({"type": "message", "content": "again"}))
        refused = await rig.until(lambda e: e["type"] == "error")
        assert refused["error"]["code"] == "rate_limited"
        assert refused["error"]["details"]["route_class"] == "chat"
        await call.receive_text(json.dumps({"type": "switch", "persona_id": "tina"}))
        await rig.until(lambda e: e["type"] == "persona_switched")
    finally:
        await call.close()
        await limiter.close()
    assert rig.kinds().count("done") == 1
