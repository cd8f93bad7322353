"""Azure Blob Storage through obstore: ``az://container/prefix`` (or ``azure://``).

The account comes from the environment that settings collected, first match wins:

1. ``AZURE_STORAGE_CONNECTION_STRING`` (AccountName/AccountKey, SharedAccessSignature,
   BlobEndpoint, or ``UseDevelopmentStorage=true`` for azurite);
2. ``AZURE_STORAGE_ACCOUNT_NAME`` (or ``AZURE_STORAGE_ACCOUNT``) with
   ``AZURE_STORAGE_ACCOUNT_KEY`` / ``AZURE_STORAGE_KEY`` or ``AZURE_STORAGE_SAS_TOKEN``, or with
   the standard Azure identity variables: a service principal (``AZURE_CLIENT_ID``,
   ``AZURE_CLIENT_SECRET``, ``AZURE_TENANT_ID``), workload identity on AKS
   (``AZURE_FEDERATED_TOKEN_FILE``), or managed identity when nothing else is given.

``AZURE_STORAGE_ENDPOINT`` overrides the blob endpoint; ``AZURE_STORAGE_USE_EMULATOR=true``
points at azurite on 127.0.0.1:10000 with its published development account.

``atomic_create`` is True: create-only writes send ``If-None-Match: *``, which Azure and azurite
enforce (409 on an existing blob). Azure has no suffix ranges, so reading from the end costs a
HEAD first; and obstore reports a missing blob on delete, which is swallowed here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from obstore.store import AzureStore

from jenkins_backup.errors import UsageError
from jenkins_backup.storage.cloud import (
    TransferOptions,
    flag,
    redact_url,
    split_url,
)
from jenkins_backup.storage.objstore import ObstoreStorage, open_store

if TYPE_CHECKING:
    from obstore.store import AzureConfig

#: azurite's fixed development account, published by Microsoft; not a secret.
EMULATOR_ACCOUNT = "devstoreaccount1"
EMULATOR_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

# Identity variables passed through to obstore's own credential chain.
_IDENTITY = {
    "client_id": ("AZURE_STORAGE_CLIENT_ID", "AZURE_CLIENT_ID"),
    "client_secret": ("AZURE_STORAGE_CLIENT_SECRET", "AZURE_CLIENT_SECRET"),
    "tenant_id": ("AZURE_STORAGE_TENANT_ID", "AZURE_TENANT_ID"),
    "authority_host": ("AZURE_STORAGE_AUTHORITY_HOST", "AZURE_AUTHORITY_HOST"),
    "federated_token_file": ("AZURE_FEDERATED_TOKEN_FILE",),
    "msi_endpoint": ("AZURE_MSI_ENDPOINT", "IDENTITY_ENDPOINT"),
    "object_id": ("AZURE_OBJECT_ID",),
    "msi_resource_id": ("AZURE_MSI_RESOURCE_ID",),
}


class AzureStorage(ObstoreStorage):
    atomic_create = True
    suffix_ranges = False

    def __init__(
        self, location: str, environ: Mapping[str, str], options: TransferOptions | None = None
    ) -> None:
        options = options or TransferOptions()
        container, prefix = split_url(location, "container")
        config = _config(environ)
        endpoint = config.get("endpoint")
        store = open_store(
            AzureStore, f"az://{container}", container, endpoint=endpoint,
            environ=environ, http_flag="AZURE_ALLOW_HTTP", endpoint_var="AZURE_STORAGE_ENDPOINT",
            options=options, prefix=prefix or None, config=config,
        )  # fmt: skip
        shown = f"az://{container}/{prefix}".rstrip("/")
        account = config.get("account_name", "")
        note = ", ".join(
            part
            for part in (
                f"account {account}" if account else "",
                f"endpoint {redact_url(endpoint)}" if endpoint else "",
            )
            if part
        )
        super().__init__(store, shown + (f" ({note})" if note else ""), options)


def parse_connection_string(text: str) -> dict[str, str]:
    """``Key=Value;Key=Value`` -> dict; values may contain '=' (base64 keys, SAS tokens)."""
    fields: dict[str, str] = {}
    for part in text.split(";"):
        if part.strip():
            name, sep, value = part.partition("=")
            if not sep:
                raise UsageError("AZURE_STORAGE_CONNECTION_STRING is malformed")
            fields[name.strip().lower()] = value.strip()
    return fields


def _config(environ: Mapping[str, str]) -> AzureConfig:
    env = environ.get
    config: AzureConfig = {}
    if conn := env("AZURE_STORAGE_CONNECTION_STRING"):
        fields = parse_connection_string(conn)
        if fields.get("usedevelopmentstorage", "").lower() == "true":
            config["account_name"] = EMULATOR_ACCOUNT
            config["account_key"] = EMULATOR_KEY
            config["endpoint"] = f"http://127.0.0.1:10000/{EMULATOR_ACCOUNT}"
        if name := fields.get("accountname"):
            config["account_name"] = name
        if key := fields.get("accountkey"):
            config["account_key"] = key
        if sas := fields.get("sharedaccesssignature"):
            config["sas_key"] = sas
        if blob := fields.get("blobendpoint"):
            config["endpoint"] = blob.rstrip("/")
        elif "accountname" in fields and (suffix := fields.get("endpointsuffix")):
            protocol = fields.get("defaultendpointsprotocol", "https")
            config["endpoint"] = f"{protocol}://{fields['accountname']}.blob.{suffix}"
        if "account_name" not in config:
            raise UsageError("AZURE_STORAGE_CONNECTION_STRING names no AccountName")
    else:
        emulator = flag(environ, "AZURE_STORAGE_USE_EMULATOR")
        name = env("AZURE_STORAGE_ACCOUNT_NAME") or env("AZURE_STORAGE_ACCOUNT")
        if emulator:
            name = name or EMULATOR_ACCOUNT
            config["endpoint"] = (
                env("AZURITE_BLOB_STORAGE_URL") or "http://127.0.0.1:10000"
            ).rstrip("/") + f"/{name}"
        if not name:
            raise UsageError(
                "Azure needs AZURE_STORAGE_ACCOUNT_NAME or AZURE_STORAGE_CONNECTION_STRING"
            )
        config["account_name"] = name
        key = (
            env("AZURE_STORAGE_ACCOUNT_KEY")
            or env("AZURE_STORAGE_KEY")
            or env("AZURE_STORAGE_ACCESS_KEY")
        )
        if key:
            config["account_key"] = key
        elif emulator and name == EMULATOR_ACCOUNT:
            config["account_key"] = EMULATOR_KEY
        elif sas := env("AZURE_STORAGE_SAS_TOKEN") or env("AZURE_STORAGE_SAS_KEY"):
            config["sas_key"] = sas.lstrip("?")
        else:
            for field, names in _IDENTITY.items():
                for var in names:
                    if value := env(var):
                        config[field] = value  # type: ignore[literal-required]
                        break
    if endpoint := env("AZURE_STORAGE_ENDPOINT") or env("AZURE_ENDPOINT"):
        config["endpoint"] = endpoint.rstrip("/")
    return config
