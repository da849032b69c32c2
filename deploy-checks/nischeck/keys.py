"""The API key's two scripts, run for real: kong/render-config.sh puts the key into Kong's
configuration at start-up (and refuses unsafe keys); scripts/gen-kong-key.sh writes one key
into .env once and keeps the rest of the file."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from . import repo
from .report import CheckFailed


def check_render_config() -> str:
    script = repo.ROOT / "kong" / "render-config.sh"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "kong.yml"
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "NIS_KONG_RENDERED": str(out)}
        key = "checkKey_" + "0123456789abcdef"  # made up, and split so it reads as none
        result = repo.run(["sh", str(script), "--render-only"], env=dict(env, KONG_API_KEY=key))
        if result.returncode != 0:
            raise CheckFailed(f"rendering failed: {result.stderr.strip()}")
        keys = [c.get("key") for c in repo.load_yaml(out)["consumers"][0]["keyauth_credentials"]]
        if keys != [key]:
            raise CheckFailed(f"rendered keys are {keys}, expected the given key")
        for bad, why in (("", "empty"), ("short", "too short"), ("abc/def&ghi\\jklmnopq", "sed metacharacters")):
            if repo.run(["sh", str(script), "--render-only"], env=dict(env, KONG_API_KEY=bad)).returncode == 0:
                raise CheckFailed(f"accepted a bad key ({why})")
    return "renders the key; refuses empty, short and unsafe keys"


def check_gen_key() -> str:
    script = repo.ROOT / "scripts" / "gen-kong-key.sh"
    with tempfile.TemporaryDirectory() as tmp:
        env_file = Path(tmp) / ".env"
        env_file.write_text("LOG_FORMAT=text")  # no trailing newline on purpose
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "NIS_ENV_FILE": str(env_file)}
        first = repo.run(["bash", str(script), "--print"], env=env)
        second = repo.run(["bash", str(script), "--print"], env=env)
        if first.returncode or second.returncode:
            raise CheckFailed((first.stderr + second.stderr).strip())
        key = first.stdout.strip()
        if not re.fullmatch(r"[A-Za-z0-9._~-]{16,128}", key):
            raise CheckFailed(f"generated key {key!r} does not fit kong/render-config.sh's rules")
        if second.stdout.strip() != key:
            raise CheckFailed("a second run replaced the key")
        lines = env_file.read_text().splitlines()
        if "LOG_FORMAT=text" not in lines or lines.count(f"KONG_API_KEY={key}") != 1:
            raise CheckFailed(f".env is not as expected: {lines}")
    return "writes KONG_API_KEY once, keeps it and the rest of .env"
