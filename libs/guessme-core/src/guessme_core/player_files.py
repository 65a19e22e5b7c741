"""The layout of the players' data folder, shared by the serve app (writer) and the `player` stage (reader).

`rounds-<YYYYMMDD>-<NNNN>.jsonl` shards of one JSON round per line (closed once full or once their
day is over, never rewritten), the single `rounds.jsonl` of earlier versions, and `tombstones.jsonl`,
the players who withdrew consent (one `{"player": <hash>}` per line).
"""

import hashlib
import re
from pathlib import Path

SHARD_GLOB = "rounds-*.jsonl"
SHARD_NAME = re.compile(r"^rounds-(\d{8})-(\d{4})\.jsonl$")
LEGACY_FILE = "rounds.jsonl"
TOMBSTONES = "tombstones.jsonl"


def shard_name(day: str, seq: int) -> str:
    return f"rounds-{day}-{seq:04d}.jsonl"


def shard_paths(folder: Path) -> list[Path]:
    """Every rounds file of the folder, oldest first (the legacy single file before the shards)."""
    legacy = [folder / LEGACY_FILE] if (folder / LEGACY_FILE).is_file() else []
    return legacy + sorted(p for p in folder.glob(SHARD_GLOB) if SHARD_NAME.match(p.name))


def player_hash(player_id: str) -> str:
    """What rounds and tombstones keep of a player id: a hash (the id itself is the right to delete)."""
    return hashlib.sha256(player_id.encode()).hexdigest()[:32]
