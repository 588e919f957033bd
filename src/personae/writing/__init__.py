"""Writing personas: a person's own voice measured from samples, adapted per platform.

``fingerprint`` measures samples, ``stylometry`` compares a text with them,
``platforms`` holds each platform's rules as data, ``validation`` checks a draft,
``synthesis`` asks a model to describe the measured voice (with evidence),
``drafting`` writes and rewrites posts in it, and ``service`` puts it together on the
persona registry.
"""
