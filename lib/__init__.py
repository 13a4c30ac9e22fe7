"""Leaf helpers any app may use: e-mail rendering, SVG charts, command argument
types, client addresses, text. Modules here import Django and the standard
library only — never an app of ours, never ``config`` — so every layer can
stand on them (healthchecks' ``hc/lib/``)."""
