"""key list --json: one object per key slot with the documented fields."""

from __future__ import annotations

import json

from inprocess import run_cli

KEY = "a-long-enough-random-key-0123456789"


def test_key_list_json_fields(env: dict[str, str]) -> None:
    keyed = {**env, "BACKUP_ENCRYPTION_KEY": KEY}
    run_cli("init", env=keyed, check=True)
    doc = json.loads(run_cli("key", "list", "--json", env=keyed, check=True).stdout)
    assert len(doc) == 1
    assert {"id", "created", "current"} <= doc[0].keys() and doc[0]["current"] is True
