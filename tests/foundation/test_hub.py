"""Hub failures of the model and corpus downloads, against a local HTTP server that answers like the
Hugging Face Hub: each is explained in full with its fix; both token variables are used; the token
never appears in a message."""

from __future__ import annotations

import http.server
import json
import socket
import threading

import pytest

from morphcpt.errors import MorphcptError

SECRET = "hf_SECRETvalue0123456789"
LONG_HUB_MESSAGE = "Access to model org/gated is restricted. " + "You must have access to it. " * 20 + "END-OF-MESSAGE"


class _HubStub(http.server.BaseHTTPRequestHandler):
    """Answers every request with the status and headers the test sets; records Authorization headers."""

    status, headers, seen_auth = 200, {}, []

    def do_GET(self):  # noqa: N802 (http.server's name)
        type(self).seen_auth.append(self.headers.get("Authorization"))
        body = json.dumps({"error": self.headers_to_send().get("X-Error-Message", "")}).encode()
        self.send_response(self.status)
        for key, value in self.headers_to_send().items():
            self.send_header(key, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_HEAD = do_GET

    def headers_to_send(self):
        return type(self).headers

    def log_message(self, *args):  # keep pytest output clean
        pass


@pytest.fixture
def hub(monkeypatch, tmp_path):
    """A local Hub stand-in; huggingface_hub online and pointed at it; no token anywhere."""
    import huggingface_hub.constants as constants
    from huggingface_hub.utils import reset_sessions

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _HubStub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setattr(constants, "ENDPOINT", url)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-login-token"))
    monkeypatch.setenv("HF_TOKEN_PATH", str(tmp_path / "no-login-token"))
    monkeypatch.setenv("HF_HUB_ETAG_TIMEOUT", "2")
    monkeypatch.setenv("HF_HUB_DOWNLOAD_TIMEOUT", "2")
    for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    _HubStub.seen_auth = []
    reset_sessions()
    yield _HubStub
    reset_sessions()
    server.shutdown()
    server.server_close()


def _go_offline(monkeypatch):
    import huggingface_hub.constants as constants
    from huggingface_hub.utils import reset_sessions

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    reset_sessions()  # the HTTP session decides offline mode when it is made


def _answer(stub, status, **headers):
    stub.status, stub.headers = status, {k.replace("_", "-"): v for k, v in headers.items()}


def _model_error(tmp_path) -> str:
    from morphcpt.models.download import download_hf

    with pytest.raises(MorphcptError) as info:
        download_hf("org/gated", "a" * 40, tmp_path / "model", config_key="families.llama31_8b")
    message = str(info.value)
    assert SECRET not in message and "\n" not in message
    assert not (tmp_path / "model").exists()  # no partial output
    return message


def test_gated_repo_without_a_token_says_how_to_get_access(hub, tmp_path):
    _answer(hub, 401, X_Error_Code="GatedRepo", X_Error_Message=LONG_HUB_MESSAGE)
    message = _model_error(tmp_path)
    assert "org/gated is a gated repository and no Hugging Face token is set" in message
    assert "https://huggingface.co/org/gated" in message and "export HF_TOKEN=" in message
    assert "HUGGING_FACE_HUB_TOKEN also works" in message
    assert "GatedRepoError" in message and "Cannot access gated repo" in message  # the Hub's text, not cut


@pytest.mark.parametrize("var", ["HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"])
def test_either_token_variable_is_sent_and_named_never_printed(hub, tmp_path, monkeypatch, var):
    monkeypatch.setenv(var, SECRET)
    _answer(hub, 403, X_Error_Code="GatedRepo", X_Error_Message=LONG_HUB_MESSAGE)
    message = _model_error(tmp_path)
    assert f"Bearer {SECRET}" in hub.seen_auth  # the download used the token of this variable
    assert f"the account of the token in {var} has no access: accept the licence on https://huggingface.co/org/gated" in message


def test_a_rejected_token_and_a_forbidden_repo_are_told_apart(hub, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", SECRET)
    _answer(hub, 401, X_Error_Message="Invalid credentials in Authorization header")
    message = _model_error(tmp_path)
    assert "refused the token in HF_TOKEN (401 Unauthorized)" in message and "settings/tokens" in message
    _answer(hub, 403, X_Error_Message=LONG_HUB_MESSAGE)
    message = _model_error(tmp_path)
    assert "(403 Forbidden)" in message and "fine-grained token" in message
    assert "END-OF-MESSAGE" in message  # the whole Hub message, however long


def test_unknown_revision_names_the_config_key(hub, tmp_path):
    _answer(hub, 404, X_Error_Code="RevisionNotFound", X_Error_Message="Invalid rev id")
    assert "fix families.llama31_8b.revision in the config" in _model_error(tmp_path)


def test_no_network_explains_the_way_out(hub, tmp_path, monkeypatch):
    import huggingface_hub.constants as constants

    with socket.socket() as sock:  # a port where nothing listens
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    monkeypatch.setattr(constants, "ENDPOINT", closed)
    message = _model_error(tmp_path)
    assert "cannot reach huggingface.co" in message and "--until download_model download_corpus" in message

    _go_offline(monkeypatch)
    assert "HF_HUB_OFFLINE is set" in _model_error(tmp_path)


def test_corpus_download_explains_the_same_way(hub, tmp_path, monkeypatch):
    from morphcpt.corpus import download_corpus

    corpus = {"source": "hf", "hf_id": "org/corpus", "revision": "b" * 40, "subset": "tl"}
    monkeypatch.setenv("HUGGING_FACE_HUB_TOKEN", SECRET)
    _answer(hub, 403, X_Error_Code="GatedRepo", X_Error_Message=LONG_HUB_MESSAGE)
    with pytest.raises(MorphcptError) as info:
        download_corpus(corpus, tmp_path / "raw" / "manifest.json", log=lambda *_: None)
    message = str(info.value)
    assert f"Bearer {SECRET}" in hub.seen_auth and SECRET not in message
    assert "token in HUGGING_FACE_HUB_TOKEN has no access" in message
    assert "https://huggingface.co/datasets/org/corpus" in message

    _go_offline(monkeypatch)
    with pytest.raises(MorphcptError, match="HF_HUB_OFFLINE is set.*corpus.source: local"):
        download_corpus(corpus, tmp_path / "raw" / "manifest.json", log=lambda *_: None)
    assert not (tmp_path / "raw" / "manifest.json").exists()


def test_model_folder_respects_the_umask(tmp_path):
    import os

    from morphcpt.fileio import apply_umask

    folder = tmp_path / "made_by_mkdtemp"
    folder.mkdir(mode=0o700)
    old = os.umask(0o022)
    try:
        apply_umask(folder)
    finally:
        os.umask(old)
    assert folder.stat().st_mode & 0o777 == 0o755
