"""Personae: define an AI persona once; use it everywhere."""

from personae.errors import PersonaeError
from personae.personas.schema import PersonaDefinition
from personae.personas.validation import parse_persona

__version__ = "0.1.0"

__all__ = ["PersonaDefinition", "PersonaeError", "__version__", "parse_persona"]
