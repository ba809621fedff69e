"""Superset 3.1.0 configuration, read by Superset through SUPERSET_CONFIG_PATH.

Every value comes from the project's one settings mechanism (defaults -> .env -> environment); the
project package is installed editable into .venvs/superset, so the import below works there too.
"""
from infrastructure.settings import LOCAL_ONLY_DEFAULTS, load

_settings = load()
_LOCAL = _settings.platform_mode == "local"

# A known key would let anyone forge session cookies: only local mode may use the built-in one.
if not _LOCAL and _settings.superset_secret_key == LOCAL_ONLY_DEFAULTS["SUPERSET_SECRET_KEY"]:
    raise RuntimeError("SUPERSET_SECRET_KEY is the local-mode default; set a long random value")
SECRET_KEY = _settings.superset_secret_key

# Metadata DB: SQLite under RUN_DIR locally, PostgreSQL (SUPERSET_DATABASE_URI) everywhere else.
if _settings.superset_database_uri:
    SQLALCHEMY_DATABASE_URI = _settings.superset_database_uri
elif _LOCAL:
    SQLALCHEMY_DATABASE_URI = f"sqlite:///{_settings.run_dir / 'superset' / 'superset.db'}"
else:
    raise RuntimeError("SUPERSET_DATABASE_URI must name the metadata database outside local mode")

# Uploads, logs and other instance files stay inside the run directory, not in ~/.superset.
DATA_DIR = str(_settings.run_dir / "superset")
SUPERSET_WEBSERVER_PORT = _settings.superset_port

# Native filters and generic chart axes are always on in 3.1; no extra feature flags are needed.
FEATURE_FLAGS: dict[str, bool] = {}

# Charts of an empty date range must answer quickly; the marts are small daily aggregates.
ROW_LIMIT = 10000
SUPERSET_WEBSERVER_TIMEOUT = 60
