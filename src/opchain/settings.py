"""The one typed settings object, read from the environment and ``.env`` at the edge (the CLI)
and passed in to everything that needs it. OP's variable names are accepted where they exist.
"""

import ipaddress
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from opchain.market.holiday_file import HolidayFileError, SuppliedHolidays, parse_holiday_file
from opchain.market.indices import DEFAULT_INDICES, INDICES
from opchain.store import layout

HOLIDAYS_FILE_LIMIT = 1_000_000  # bytes: NSE's list of a year is a few kilobytes


def _alias(*names: str) -> AliasChoices:
    return AliasChoices(*names)


class Settings(BaseSettings):
    # No setting is infinite or NaN: a NaN cadence or rate passed every bound and then failed
    # deep in the collector, restart after restart.
    model_config = SettingsConfigDict(
        env_prefix="OPCHAIN_",
        env_file=".env",
        extra="ignore",
        populate_by_name=True,
        allow_inf_nan=False,
    )

    data_dir: Path = Field(
        Path("data"),
        description="Where everything is written.",
    )
    csv_split_root: Path | None = Field(
        None,
        validation_alias=_alias("OPCHAIN_CSV_SPLIT_ROOT", "CSV_SPLIT_ROOT", "csv_split_root"),
        description="Daily split CSVs; default `<data_dir>/csv_data`.",
    )
    adv_root: Path | None = Field(
        None,
        validation_alias=_alias("OPCHAIN_ADV_ROOT", "ADV_ROOT", "adv_root"),
        description="Weekday masters, DTE profiles and EOD reports; default `<data_dir>/data_adv`.",
    )
    broker: Literal["sim", "kite", "replay"] = Field(
        "sim",
        description="Where quotes come from: the simulated market, Zerodha Kite Connect, or a "
        "recorded day played back (`opchain run --broker replay --date D`).",
    )
    indices: Annotated[tuple[str, ...], NoDecode] = Field(
        DEFAULT_INDICES,
        validation_alias=_alias("OPCHAIN_INDICES", "SESSION_INDEXES", "indices"),
        description="The indices collected, comma-separated: NIFTY, BANKNIFTY, SENSEX.",
    )
    cadence_seconds: float = Field(
        30.0,
        ge=1.0,
        validation_alias=_alias(
            "OPCHAIN_CADENCE_SECONDS", "LOGGER_LOOP_INTERVAL_SEC", "cadence_seconds"
        ),
        description="Seconds between snapshots (1 to any).",
    )
    strike_width: int = Field(2, ge=0, le=50, description="Offsets `atm_m<w>` .. `atm_p<w>`.")
    offsets: Annotated[tuple[int, ...] | None, NoDecode] = Field(
        None,
        validation_alias=_alias("OPCHAIN_OFFSETS", "LOGGER_OFFSETS", "offsets"),
        description="Explicit offsets such as `-2,-1,0,1,2` (overrides strike_width).",
    )
    full_chain: bool | None = Field(
        None,
        description="Quote every listed strike of the watched expiries, so PCR, max pain, GEX, "
        "walls and zero gamma see the whole chain (split files keep their offsets; raw keeps "
        "every leg). Unset: the whole chain whenever the cadence leaves room for the quote calls "
        "it needs (at 30 s it does; streaming ticks, always), else the band of offsets, said in "
        "the run's first lines.",
    )
    rate: float = Field(0.0, description="Risk-free rate for discounting under Black-76.")
    sim_seed: int = Field(7, ge=0, description="The simulator's random seed (0 or more).")
    sim_glitch_rate: float = Field(
        0.001,
        ge=0.0,
        le=1.0,
        description="Share of the simulator's quotes that are glitched (a crossed book or a stale "
        "timestamp, 0 to 1), so that validation has something to find.",
    )
    raw_window_minutes: int = Field(
        15, ge=1, le=375, description="Minutes of raw legs folded into one Parquet part (1 to 375)."
    )
    durable_writes: bool = Field(False, description="fsync every flush (survives power loss).")
    flush_seconds: float = Field(
        1.0,
        ge=0,
        description="Longest wall time rows wait in memory before they are written to the OS "
        "(0: every cycle); a crash loses at most this much.",
    )
    holidays_file: Path | None = Field(
        None,
        description="NSE's trading-holiday list (its CSV download or its holiday-master JSON) "
        "for a year opchain has no table for; `opchain calendar` shows what it adds.",
    )
    kite_api_key: str | None = Field(
        None,
        validation_alias=_alias("KITE_API_KEY", "OPCHAIN_KITE_API_KEY", "kite_api_key"),
        description="Your Kite Connect app's API key.",
    )
    kite_api_secret: SecretStr | None = Field(
        None,
        validation_alias=_alias("KITE_API_SECRET", "OPCHAIN_KITE_API_SECRET", "kite_api_secret"),
        description="Your Kite Connect app's API secret (`opchain login` signs with it).",
    )
    kite_access_token: SecretStr | None = Field(
        None,
        validation_alias=_alias(
            "KITE_ACCESS_TOKEN", "OPCHAIN_KITE_ACCESS_TOKEN", "kite_access_token"
        ),
        description="An access token to use instead of the one `opchain login` keeps.",
    )
    kite_root: str = Field(
        "https://api.kite.trade", description="Kite Connect API root (a fake server's, for tests)."
    )
    kite_login_url: str | None = Field(
        None,
        description="Kite's login page; default `https://kite.zerodha.com/connect/login`, or "
        "`<kite_root>/connect/login` for another root.",
    )
    kite_ticker_url: str | None = Field(
        None,
        description="Kite's ticker; default `wss://ws.kite.trade`, or `<kite_root>` as `ws://` "
        "for another root.",
    )
    kite_redirect_url: str = Field(
        "http://127.0.0.1:5000/kite/callback",
        description="The redirect URL registered for your Kite app; `opchain login` catches "
        "the login there when it is on this machine.",
    )
    kite_token_file: Path = Field(
        Path("~/.config/opchain/kite_token.json"),
        description="Where `opchain login` keeps the day's access token (mode 0600).",
    )
    kite_ticks: bool = Field(
        False, description="Collect from Kite's WebSocket ticker instead of polling `/quote`."
    )

    # The API and dashboard (opchain serve, and inside opchain run).
    api_host: str = Field("127.0.0.1", description="Where the API listens.")
    api_port: int = Field(8000, ge=0, le=65535, description="The API's port (0: any free one).")
    metrics_port: int | None = Field(
        None,
        ge=0,
        le=65535,
        description="`opchain collect` and `opchain worker` serve their Prometheus /metrics on "
        "this port, at api_host (0: any free one). Unset: no metrics server.",
    )
    api_keys: Annotated[tuple[SecretStr, ...], NoDecode] = Field(
        (),
        description="Keys for the data endpoints, comma-separated: a key itself or its SHA-256 "
        "as `sha256:<hex>`; kept only as hashes. Empty: the API is open (loopback use).",
    )
    api_rate: float = Field(50.0, gt=0, description="Requests per second per client, sustained.")
    api_burst: int = Field(100, ge=1, description="Requests a client may make at once.")
    api_trusted_proxies: Annotated[tuple[str, ...], NoDecode] = Field(
        (),
        description="Reverse proxies in front of the API, comma-separated addresses or networks "
        "(`10.0.0.5`, `10.0.0.0/24`): only a request from one of these has its `X-Forwarded-For` "
        "and `X-Forwarded-Proto` believed. Empty: none; a client is the address it connects from.",
    )
    # Health and alerts.
    influxdb_url: str | None = Field(
        None,
        validation_alias=_alias("OPCHAIN_INFLUXDB_URL", "INFLUXDB_URL", "influxdb_url"),
        description="InfluxDB to check and write to (none: not used).",
    )
    influxdb_api: Literal["v1", "v2"] = Field(
        "v1",
        description="`v1`: `POST /write?db=` (InfluxDB 1.x, and 2.x/3.x through their v1 API); "
        "`v2`: `POST /api/v2/write?bucket=&org=` with a token (2.x, 3.x).",
    )
    influxdb_db: str = Field(
        "opchain",
        min_length=1,
        validation_alias=_alias("OPCHAIN_INFLUXDB_DB", "INFLUXDB_DB", "influxdb_db"),
        description="The v1 database, created when missing.",
    )
    influxdb_bucket: str | None = Field(
        None,
        validation_alias=_alias("OPCHAIN_INFLUXDB_BUCKET", "INFLUXDB_BUCKET", "influxdb_bucket"),
        description="The v2 bucket.",
    )
    influxdb_org: str | None = Field(
        None,
        validation_alias=_alias("OPCHAIN_INFLUXDB_ORG", "INFLUXDB_ORG", "influxdb_org"),
        description="The v2 organisation.",
    )
    influxdb_token: SecretStr | None = Field(
        None,
        validation_alias=_alias("OPCHAIN_INFLUXDB_TOKEN", "INFLUXDB_TOKEN", "influxdb_token"),
        description="Sent as `Authorization: Token` (v2; and v1 when set).",
    )
    influxdb_env: str = Field("prod", min_length=1, description="The `env` tag of every point.")
    influxdb_batch_points: int = Field(
        5000, ge=1, description="Points sent to InfluxDB in one request, at most."
    )
    influxdb_flush_seconds: float = Field(
        1.0, gt=0, description="Longest time a point waits in the spool before it is sent."
    )
    influxdb_spool_mb: float = Field(
        512.0,
        gt=0,
        description="Disk kept for points InfluxDB has not taken yet (compressed); when it is "
        "full, new points are dropped, counted and alerted.",
    )
    influxdb_timeout_seconds: float = Field(
        5.0, gt=0, description="Longest wait for InfluxDB's answer to one write."
    )
    redis_url: str | None = Field(
        None,
        validation_alias=_alias("OPCHAIN_REDIS_URL", "REDIS_URL", "redis_url"),
        description="Redis to check and publish to, e.g. `redis://127.0.0.1:6379/0`, or "
        "`rediss://...` for TLS; a password in the URL (`redis://:pw@host:port/0`) or in "
        "redis_password (none: OP's REDIS_HOST, else unused).",
    )
    redis_host: str | None = Field(
        None,
        validation_alias=_alias("OPCHAIN_REDIS_HOST", "REDIS_HOST", "redis_host"),
        description="OP's way to name Redis: its host, when redis_url is not set.",
    )
    redis_port: int = Field(
        6379,
        ge=1,
        le=65535,
        validation_alias=_alias("OPCHAIN_REDIS_PORT", "REDIS_PORT", "redis_port"),
        description="The port with redis_host.",
    )
    redis_password: SecretStr | None = Field(
        None,
        validation_alias=_alias("OPCHAIN_REDIS_PASSWORD", "REDIS_PASSWORD", "redis_password"),
        description="Redis's password (AUTH), unless the URL carries one.",
    )
    redis_tls_ca: Path | None = Field(
        None,
        description="A CA bundle to verify a `rediss://` server's certificate with (default: the "
        "system's).",
    )
    bus_prefix: str = Field(
        "opchain",
        min_length=1,
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="The first part of every Redis key the bus uses: several deployments may "
        "share one Redis under different prefixes.",
    )
    bus_lease_seconds: float = Field(
        10.0,
        ge=0.5,
        le=600,
        description="How long a worker's claim on a partition lasts unrenewed: a dead worker's "
        "partitions are taken over this long after its last renewal.",
    )
    alert_webhook_url: str | None = Field(None, description="POST each alert here as JSON.")
    alert_smtp_host: str | None = Field(None, description="Mail each alert through this server.")
    alert_smtp_port: int = Field(25, ge=1, le=65535, description="The mail server's port.")
    alert_smtp_user: str | None = Field(
        None, description="The user to log in to the mail server as (none: no login)."
    )
    alert_smtp_password: SecretStr | None = Field(None, description="The mail server password.")
    alert_smtp_tls: bool = Field(False, description="STARTTLS before logging in.")
    alert_email_from: str = Field("opchain@localhost", description="The alert mails' sender.")
    alert_email_to: Annotated[tuple[str, ...], NoDecode] = Field(
        (), description="Recipients, comma-separated."
    )
    alert_repeat_minutes: float = Field(
        60.0, gt=0, description="An alert still firing is sent again after this long, not sooner."
    )
    stale_seconds: float = Field(
        120.0, gt=0, description="Data older than this in a session is stale (alert)."
    )
    disk_min_free_gb: float = Field(
        5.0, ge=0, description="Less free space than this under the data directory alerts."
    )
    participants_url: str = Field(
        "https://nsearchives.nseindia.com/content/nsccl",
        description="Where `opchain participants fetch` downloads NSE's "
        "`fao_participant_oi_<DDMMYYYY>.csv` files from.",
    )

    @field_validator("indices", mode="before")
    @classmethod
    def _split_indices(cls, value: object) -> object:
        if isinstance(value, str):
            value = [v for v in value.replace(" ", "").split(",") if v]
        if isinstance(value, list | tuple):
            keys = tuple(str(v).upper() for v in value)
            unknown = [k for k in keys if k not in INDICES]
            if unknown:
                raise ValueError(f"unknown indices {unknown}; known: {', '.join(INDICES)}")
            return keys
        return value

    @field_validator("offsets", mode="before")
    @classmethod
    def _split_offsets(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(int(v) for v in value.replace(" ", "").split(",") if v)
        return value

    @field_validator("api_keys", "alert_email_to", mode="before")
    @classmethod
    def _split_list(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(v.strip() for v in value.split(",") if v.strip())
        return value

    @field_validator("api_trusted_proxies", mode="before")
    @classmethod
    def _split_networks(cls, value: object) -> object:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if isinstance(value, list | tuple):
            for item in value:
                try:
                    ipaddress.ip_network(str(item), strict=False)
                except ValueError:
                    raise ValueError(f"{item!r} is not an IP address or network") from None
            return tuple(str(item) for item in value)
        return value

    @property
    def strike_offsets(self) -> tuple[int, ...]:
        if self.offsets is not None:
            return tuple(sorted(set(self.offsets)))
        return tuple(range(-self.strike_width, self.strike_width + 1))

    @property
    def token_file(self) -> Path:
        return self.kite_token_file.expanduser()

    @property
    def login_url(self) -> str:
        if self.kite_login_url:
            return self.kite_login_url
        if self.kite_root.rstrip("/") == "https://api.kite.trade":
            return "https://kite.zerodha.com/connect/login"
        return f"{self.kite_root.rstrip('/')}/connect/login"

    @property
    def ticker_url(self) -> str:
        if self.kite_ticker_url:
            return self.kite_ticker_url
        if self.kite_root.rstrip("/") == "https://api.kite.trade":
            return "wss://ws.kite.trade"
        return "ws" + self.kite_root.rstrip("/").removeprefix("http")

    @property
    def redis(self) -> str | None:
        """Where Redis is: ``redis_url``, else OP's ``REDIS_HOST`` and ``REDIS_PORT`` (None:
        not configured). ``redis_password`` is sent separately (:mod:`opchain.bus.connect`)."""
        if self.redis_url:
            return self.redis_url
        if self.redis_host:
            return f"redis://{self.redis_host}:{self.redis_port}/0"
        return None

    @property
    def profiles_root(self) -> Path:
        return self.adv_root or layout.profiles_root(self.data_dir)

    @property
    def split_root(self) -> Path:
        return self.csv_split_root or layout.split_root(self.data_dir)


def read_holidays_file(path: Path) -> SuppliedHolidays:
    """The holidays listed in the file at ``path``: a regular file of at most
    :data:`HOLIDAYS_FILE_LIMIT` bytes, UTF-8 (with or without a byte-order mark). Every problem
    is a HolidayFileError naming the file (and the line, where there is one)."""
    path = path.expanduser()
    source = str(path)
    try:
        if not path.is_file():
            what = "does not exist" if not path.exists() else "is not a regular file"
            raise HolidayFileError(source, None, f"the holidays file {what}")
        with path.open("rb") as f:
            data = f.read(HOLIDAYS_FILE_LIMIT + 1)
    except OSError as err:
        raise HolidayFileError(source, None, f"cannot read it: {err.strerror}") from None
    if len(data) > HOLIDAYS_FILE_LIMIT:
        raise HolidayFileError(source, None, f"larger than {HOLIDAYS_FILE_LIMIT:,} bytes")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise HolidayFileError(source, line, f"not UTF-8 text ({err.reason})") from None
    return parse_holiday_file(text, source)
