"""Persona definitions (as dicts) that the conversation and panel harnesses seed."""

from __future__ import annotations

# Conversations: a strict-Hindi persona with knowledge, and an English one.
TINA = {"id": "tina", "name": "Tina Kulkarni", "language": "hi", "language_policy": "strict",
        "greetings": ["नमस्ते, मैं तीना हूं।"], "voice": {"voice_id": "nova"},
        "knowledge": [
            {"title": "Manglik dosha", "content": "Mars in the seventh house; remedy: kumbh vivah"},
            {"title": "Muhurat", "content": "Auspicious wedding dates fall in winter months"}]}
MOHIT = {"id": "mohit", "name": "Mohit", "language": "en", "greetings": ["Hello, I am Mohit."],
         "voice": {"voice_id": "onyx"}}

# Panels: two judges the fake model tells apart by name (see tests.support.panels).
ZED = {"id": "zed", "name": "Zed Gen-Z", "language": "en",
       "system_prompt": "You are Zed, nineteen, bored by anything slow."}
ADA = {"id": "ada", "name": "Ada Advertiser", "language": "en",
       "system_prompt": "You are Ada, a brand advertiser who values reach."}
