"""Hugging Face Hub access shared by the model download, the corpus download and the preflight.

The token comes from the environment only: HF_TOKEN or HUGGING_FACE_HUB_TOKEN (both accepted
everywhere), else the file `huggingface-cli login` wrote. It is never printed, logged or written:
messages name the variable, never its value, and any Hub message that echoes it is scrubbed.
Hub failures (gated repo, 401/403, unknown repo or revision, no network) are explained in full,
with the fix, instead of a cut exception text.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

TOKEN_VARS = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")
TOKENS_URL = "https://huggingface.co/settings/tokens"


def hf_token(env: Mapping[str, str] | None = None) -> str | None:
    """The token from HF_TOKEN or HUGGING_FACE_HUB_TOKEN; None lets huggingface_hub use its login file."""
    env = os.environ if env is None else env
    for var in TOKEN_VARS:
        if (env.get(var) or "").strip():
            return env[var].strip()
    return None


def login_token_path(env: Mapping[str, str] | None = None) -> Path:
    """Where `huggingface-cli login` keeps the token (huggingface_hub's own lookup order)."""
    env = os.environ if env is None else env
    if env.get("HF_TOKEN_PATH"):
        return Path(env["HF_TOKEN_PATH"]).expanduser()
    if env.get("HF_HOME"):
        return Path(env["HF_HOME"]).expanduser() / "token"
    cache = Path(env["XDG_CACHE_HOME"]).expanduser() if env.get("XDG_CACHE_HOME") else Path.home() / ".cache"
    return cache / "huggingface" / "token"


def token_source(env: Mapping[str, str] | None = None) -> str | None:
    """Where the token comes from ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "the login file <path>"), or None."""
    env = os.environ if env is None else env
    for var in TOKEN_VARS:
        if (env.get(var) or "").strip():
            return var
    path = login_token_path(env)
    try:
        if path.is_file() and path.read_text().strip():
            return f"the login file {path}"
    except OSError:
        pass
    return None


def repo_url(repo_id: str, repo_type: str = "model") -> str:
    return f"https://huggingface.co/{'datasets/' if repo_type == 'dataset' else ''}{repo_id}"


def _full_text(exc: BaseException, token: str | None) -> str:
    """The exception's whole message on one line, the token scrubbed."""
    text = " ".join(str(exc).split()) or "no message"
    if token:
        text = text.replace(token, "<token>")
    return f"{type(exc).__name__}: {text}"


def _status(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    return getattr(response, "status_code", None)


def _is_offline(exc: BaseException) -> bool:
    """No network (or HF_HUB_OFFLINE=1): huggingface_hub's offline errors and connection failures."""
    from huggingface_hub.errors import LocalEntryNotFoundError, OfflineModeIsEnabled

    if isinstance(exc, (OfflineModeIsEnabled, LocalEntryNotFoundError)):
        return True
    try:
        import requests

        if isinstance(exc, (requests.ConnectionError, requests.Timeout)):
            return True
    except ImportError:  # huggingface_hub >= 1.0 uses httpx
        pass
    try:
        import httpx

        if isinstance(exc, (httpx.ConnectError, httpx.TimeoutException)):
            return True
    except ImportError:
        pass
    return isinstance(exc, (ConnectionError, TimeoutError))


def explain_hub_error(exc: BaseException, repo_id: str, revision: str, *, repo_type: str = "model",
                      config_key: str = "families.<family>", offline_fix: str = "") -> str:
    """One line: what went wrong with `repo_id`@`revision`, the fix, then the Hub's full message.

    `config_key` is where the repo is configured (families.llama31_8b, corpus); `offline_fix` is
    the extra way out when there is no network (e.g. corpus.source: local)."""
    from huggingface_hub.errors import (GatedRepoError, HfHubHTTPError, LocalEntryNotFoundError, RepositoryNotFoundError,
                                        RevisionNotFoundError)

    full_text = _full_text(exc, hf_token())
    # snapshot_download wraps a failed Hub call (403, 5xx, no network) in LocalEntryNotFoundError
    # ("cannot find the files in the local cache"): the cause is what went wrong.
    if isinstance(exc, LocalEntryNotFoundError) and exc.__cause__ is not None:
        exc = exc.__cause__
        full_text = f"{_full_text(exc, hf_token())}; {full_text}"
    token = hf_token()
    source = token_source()
    url = repo_url(repo_id, repo_type)
    set_token = (f"export HF_TOKEN=<a read token from {TOKENS_URL}> (HUGGING_FACE_HUB_TOKEN also works) "
                 "or run `huggingface-cli login`")
    what = f"{repo_id}@{revision}"
    if isinstance(exc, GatedRepoError):
        if source is None:
            why = (f"{repo_id} is a gated repository and no Hugging Face token is set: accept its licence on {url} "
                   f"while logged in, then {set_token}, and rerun")
        else:
            why = (f"{repo_id} is a gated repository and the account of the token in {source} has no access: accept "
                   f"the licence on {url} with that account (approval can take a while; the page says when it is "
                   "granted), or use a token of an account that has access, and rerun")
    elif isinstance(exc, RevisionNotFoundError):
        why = f"{repo_id} has no revision {revision}: fix {config_key}.revision in the config (a 40-hex commit of {url})"
    elif isinstance(exc, RepositoryNotFoundError):
        why = (f"{repo_id} was not found, or it is private or gated and "
               + ("no Hugging Face token is set: check " if source is None else f"not visible to the token in {source}: check ")
               + f"{config_key}.hf_id" + (f" and {set_token}" if source is None else f" and that {url} opens for that account"))
    elif isinstance(exc, HfHubHTTPError) and _status(exc) == 401:
        why = (f"the Hugging Face Hub refused the token in {source or 'the environment'} (401 Unauthorized): it is invalid, "
               f"expired or revoked; create a read token on {TOKENS_URL}, export HF_TOKEN=<it> and rerun")
    elif isinstance(exc, HfHubHTTPError) and _status(exc) == 403:
        why = (f"the token in {source or 'the environment'} may not read {repo_id} (403 Forbidden): accept the licence on "
               f"{url} with its account; a fine-grained token also needs 'Read access to contents of all public gated "
               f"repos you can access' ({TOKENS_URL}); then rerun")
    elif _is_offline(exc):
        offline = ("HF_HUB_OFFLINE is set" if os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in ("1", "ON", "YES", "TRUE")
                   else "this machine cannot reach huggingface.co (no network, a proxy or a firewall)")
        why = (f"cannot download: {offline}. Run the downloads where there is network (e.g. on a login node: "
               "`snakemake --profile profiles/local TARGET --until download_model download_corpus`), then rerun on "
               "the cluster" + (f"; {offline_fix}" if offline_fix else ""))
    else:
        why = f"download of {what} failed; rerun the rule to resume (finished files are kept)"
    return f"{what}: {why} [{full_text}]"
