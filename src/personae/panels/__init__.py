"""Persona panels: several personas score every segment of a piece of content."""
