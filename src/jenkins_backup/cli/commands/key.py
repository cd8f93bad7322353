"""`jenkins-backup key list|add|remove`: rotate the user keys of an encrypted repository."""

from __future__ import annotations

import argparse
from typing import Any

from jenkins_backup import settings as settings_mod
from jenkins_backup.cli import commands
from jenkins_backup.settings import Settings


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "key", help="list, add or remove encryption keys (the current key must open the repository)"
    )
    keys = p.add_subparsers(dest="key_command", required=True)
    ls = keys.add_parser("list", help="print the key ids; '*' marks the current key")
    ls.add_argument("--json", action="store_true", help="print a JSON array on stdout")
    commands.common_options(ls)
    ls.set_defaults(run=_list)
    add = keys.add_parser("add", help="let another key open the repository (no data rewritten)")
    add.add_argument(
        "--new-key-file", help="file holding the new key (or BACKUP_NEW_ENCRYPTION_KEY_FILE)"
    )
    add.add_argument(
        "--new-key", help="the new key itself (visible in ps: prefer the file or the environment)"
    )
    commands.common_options(add)
    add.set_defaults(run=_add)
    rm = keys.add_parser("remove", help="retire a key by id (not the last, not the one in use)")
    rm.add_argument("key_id", help="the key id, as `key list` prints it")
    commands.common_options(rm)
    rm.set_defaults(run=_remove)


def _list(args: argparse.Namespace, settings: Settings) -> int:
    from jenkins_backup.cli.output import print_json
    from jenkins_backup.operations.keys import list_keys

    found = list_keys(settings)
    if args.json:
        print_json(found)
        return 0
    for k in found:
        print(f"{'*' if k.current else ' '} {k.id}  {k.created}")
    return 0


def _add(args: argparse.Namespace, settings: Settings) -> int:
    from jenkins_backup.operations.keys import add_key

    new = settings_mod.new_encryption_key(args.new_key, args.new_key_file)
    print(add_key(settings, new))
    return 0


def _remove(args: argparse.Namespace, settings: Settings) -> int:
    from jenkins_backup.operations.keys import remove_key

    remove_key(settings, args.key_id)
    return 0
