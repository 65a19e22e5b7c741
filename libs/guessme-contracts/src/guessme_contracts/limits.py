"""The drawing limits: what one drawing may hold, enforced by the server and respected by the game.

The server's preprocessing (guessme_core.preprocessing) refuses a drawing past them; the game
(apps/frontend/src/lib/strokes.ts) stops adding strokes and points before it gets there, with the
values generated from schemas/drawing-limits.schema.json (`npm --prefix apps/frontend run gen:types`).
"""

MAX_CANVAS = 10_000  # px, per side
MAX_STROKES = 100
MAX_POINTS = 10_000  # over all strokes
NUM_DIGITS = 10  # the game's digits 0..9: what a player is asked to draw, and the model's classes

EXPORTED = ("MAX_CANVAS", "MAX_STROKES", "MAX_POINTS", "NUM_DIGITS")  # into the JSON Schema, in this order
