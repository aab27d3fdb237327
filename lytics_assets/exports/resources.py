"""The exports resource: the settings an export run uses, overridable per deployment or test."""

from pathlib import Path

import dagster as dg
from pydantic import SecretStr

from lytics.settings import Settings, get_settings


class ExportsResource(dg.ConfigurableResource["ExportsResource"]):
    """Settings come from the environment (README, Configuration); fields set here win."""

    secret_key: str | None = None
    local_dir: str | None = None
    default_backup: bool | None = None
    file_mb: float | None = None
    block_mb: float | None = None
    s3_max_attempts: int | None = None

    def settings(self) -> Settings:
        overrides: dict[str, object] = {}
        if self.secret_key is not None:
            overrides["secret_key"] = SecretStr(self.secret_key)
        if self.local_dir is not None:
            overrides["exports_local_dir"] = Path(self.local_dir)
        for field, name in (
            ("default_backup", "exports_default_backup"),
            ("file_mb", "exports_file_mb"),
            ("block_mb", "exports_block_mb"),
            ("s3_max_attempts", "exports_s3_max_attempts"),
        ):
            value = getattr(self, field)
            if value is not None:
                overrides[name] = value
        return get_settings().model_copy(update=overrides)
