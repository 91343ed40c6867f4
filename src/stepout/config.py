"""Settings, from the environment (prefix `STEPOUT_`) or a `.env` file."""

from pathlib import Path

from platformdirs import user_data_path
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_data_dir() -> Path:
    return user_data_path("stepout", appauthor=False)


def default_database_url() -> str:
    return f"sqlite:///{default_data_dir() / 'stepout.db'}"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="STEPOUT_", env_file=".env", extra="ignore")

    database_url: str = Field(
        default_factory=default_database_url,
        description="SQLAlchemy URL: sqlite:///path.db (default, in the user's data directory)"
        " or postgresql+psycopg://user@host/db",
    )
    secret_key_file: Path = Field(
        default_factory=lambda: default_data_dir() / "stepout.key",
        description="The key file (encryption, chain and signing keys), kept outside the"
        " database; `stepout keys generate` makes one",
    )
    public_url: str = Field(
        default="http://127.0.0.1:8000",
        description="Where browsers reach `stepout serve`, for the links the CLI prints",
    )
    policy: Path | None = Field(
        default=None, description="A policy TOML file that overrides the shipped default."
    )
    presence_away_seconds: float = Field(
        default=60.0,
        gt=0,
        description="How long a therapist may be out of a telehealth call before the presence"
        " service records an exit (`POST /api/v1/presence`; a sensors file sets its own)",
    )
