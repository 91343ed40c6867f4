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
    secret_file: Path = Field(
        default_factory=lambda: default_data_dir() / "secret.key",
        description="The server's secret (signs clients' concern links); created on first use",
    )
    public_url: str = Field(
        default="http://127.0.0.1:8000",
        description="Where browsers reach `stepout serve`, for the links the CLI prints",
    )
    policy: Path | None = Field(
        default=None, description="A policy TOML file that overrides the shipped default."
    )


def load_secret(path: Path) -> bytes:
    """The secret in `path`, created (32 random bytes, readable by the owner only) if absent."""
    if not path.exists():
        import os
        import secrets

        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}")
        temporary.write_bytes(secrets.token_bytes(32))
        temporary.chmod(0o600)
        try:
            os.link(temporary, path)  # two processes starting at once: the first one wins
        except FileExistsError:
            pass
        finally:
            temporary.unlink()
    secret = path.read_bytes()
    if len(secret) < 32:
        raise ValueError(f"{path}: a secret needs at least 32 bytes")
    return secret
