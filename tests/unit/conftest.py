"""Fixtures for the module tests: a real moto_server, a counting/throttling proxy in front of it, and
helpers that run the collection's modules the way Ansible does.

* ``moto``: one ``moto_server`` process per session on a free 127.0.0.1 port.
* ``proxy``: an HTTP proxy (thread) between the modules and moto. It records every AWS call
  (service, action, parameters) and can answer the first N calls of each action with a throttling
  error (SSM/KMS: HTTP 400 JSON ``__type: ThrottlingException``; EC2: HTTP 503 XML ``RequestLimitExceeded``).
  ``proxy.fail(action, code)`` answers every call of an action with another AWS error (a missing IAM
  permission, for example).
  ``proxy.fail_first(action, n, code)`` answers only the first N calls of an action with an error
  (e.g. EC2's ``InvalidInstanceID.NotFound`` right after a launch); ``proxy.fail_after_forward(action)``
  passes a call to moto but answers the client with ``InternalError`` (a lost response, so the
  client's retry repeats a request that already took effect).
* ``run_module``: runs ``plugins/modules/<name>.py`` with an ``ANSIBLE_MODULE_ARGS`` JSON file - exactly the
  interface Ansible uses to call a module (argument spec, no_log, check mode, exit/fail JSON) - with
  the collection importable under ``ansible_collections.sesacthon.kubeadm_aws``.
* ``run_ansible`` / ``run_playbook``: the real ``ansible`` / ``ansible-playbook`` CLIs with a throwaway
  ansible.cfg whose collections path holds this checkout, for the tests that need the whole pipeline
  (verbosity, no_log, FQCN resolution).
No boto3 is mocked: every call the modules make goes over HTTP to moto.
"""

import http.client
import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from pathlib import Path

import boto3
import pytest

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
REGION = "us-east-1"
CREDS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url, timeout=30):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            u = urllib.parse.urlparse(url)
            c = http.client.HTTPConnection(u.hostname, u.port, timeout=2)
            c.request("GET", "/moto-api/")
            c.getresponse().read()
            return
        except OSError as e:  # not up yet
            last = e
            time.sleep(0.1)
    raise RuntimeError("moto_server did not answer on %s: %s" % (url, last))


@pytest.fixture(scope="session")
def moto(tmp_path_factory):
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    exe = VENV_BIN / "moto_server"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "moto.server"]
    with open(log, "wb") as fh:
        proc = subprocess.Popen(cmd + ["-H", "127.0.0.1", "-p", str(port)], stdout=fh, stderr=subprocess.STDOUT)
    url = "http://127.0.0.1:%d" % port
    try:
        wait_http(url)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


# ------------------------------------------------------------------------------------------------
# counting / throttling proxy
# ------------------------------------------------------------------------------------------------
class Call(object):
    def __init__(self, service, action, params, throttled, error=None, forwarded=True):
        self.service = service
        self.action = action
        self.params = params  # dict (JSON protocols) or {key: [values]} (query protocol)
        self.throttled = throttled
        self.error = error  # the AWS error code the proxy answered with (fail_first / fail_after_forward)
        self.forwarded = forwarded  # whether moto saw the call

    def __repr__(self):
        return "Call(%s.%s%s)" % (self.service, self.action, " THROTTLED" if self.throttled else "")


class Proxy(object):
    def __init__(self, upstream):
        self.upstream = urllib.parse.urlparse(upstream)
        self.calls = []
        self.lock = threading.Lock()
        self._throttle_first = 0
        self._seen = {}
        self._server = None
        self._barriers = {}
        self._errors = {}
        self._fail_first = {}
        self._fail_after = {}

    def hold(self, action, parties, timeout=120):
        """Hold the first ``parties`` calls of ``action`` until all of them have arrived, then let them
        through together (later calls pass straight away).

        Makes concurrent callers deterministic: e.g. every caller reads the lock before anyone writes it.
        """
        with self.lock:
            self._barriers[action] = [threading.Barrier(parties, timeout=timeout), parties]

    # --- control -------------------------------------------------------------------------------
    def reset(self):
        with self.lock:
            self.calls = []
            self._throttle_first = 0
            self._seen = {}
            self._barriers = {}
            self._errors = {}
            self._fail_first = {}
            self._fail_after = {}

    def fail_first(self, action, n, code, message="", status=400):
        """Answer the first ``n`` calls of ``action`` (from now on) with the AWS error ``code`` without
        passing them to moto; later calls pass. E.g. EC2's ``InvalidInstanceID.NotFound`` for an instance
        that was just launched (eventual consistency)."""
        with self.lock:
            self._fail_first[action] = [n, code, message, status]

    def fail_after_forward(self, action, n=1, code="InternalError", message="We encountered an internal error.",
                           status=500):
        """Pass the first ``n`` calls of ``action`` (from now on) to moto, so they take effect, but answer
        the client with the AWS error ``code``: a response lost after AWS applied the request. The client's
        retry then repeats a request that already happened."""
        with self.lock:
            self._fail_after[action] = [n, code, message, status]

    def _take(self, table, action):
        """(code, message, status) if the next call of ``action`` is one of ``table``'s, else None."""
        with self.lock:
            entry = table.get(action)
            if entry is None or entry[0] <= 0:
                return None
            entry[0] -= 1
            return entry[1], entry[2], entry[3]

    @staticmethod
    def _send_error(handler, json_protocol, code, message, status):
        if json_protocol:
            ctype = "application/x-amz-json-1.1"
            payload = json.dumps({"__type": code, "message": message}).encode()
        else:
            ctype = "text/xml"
            payload = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Errors><Error>"
                       "<Code>%s</Code><Message>%s</Message></Error></Errors>"
                       "<RequestID>injected</RequestID></Response>" % (code, message)).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", ctype)
        handler.send_header("Content-Length", str(len(payload)))
        handler.send_header("x-amzn-RequestId", "injected")
        handler.end_headers()
        handler.wfile.write(payload)

    def fail(self, action, code="AccessDeniedException", message="User is not authorized to perform this action"):
        """Answer every call of ``action`` (from now on) with the AWS error ``code``, as AWS answers a
        principal that lacks the IAM permission (not retried: not a throttling error)."""
        with self.lock:
            self._errors[action] = (code, message)

    def throttle_first(self, n):
        """Answer the first ``n`` calls of every action (from now on) with a throttling error."""
        with self.lock:
            self._throttle_first = n
            self._seen = {}

    def actions(self, service=None, throttled=None):
        with self.lock:
            return [c.action for c in self.calls
                    if (service is None or c.service == service) and (throttled is None or c.throttled == throttled)]

    def count(self, action, throttled=False):
        with self.lock:
            return sum(1 for c in self.calls if c.action == action and (throttled is None or c.throttled == throttled))

    def find(self, action, throttled=False):
        with self.lock:
            return [c for c in self.calls if c.action == action and c.throttled == throttled]

    # --- server --------------------------------------------------------------------------------
    def _classify(self, headers, body):
        target = headers.get("X-Amz-Target")
        if target:  # JSON protocol: AmazonSSM.PutParameter, TrentService.CreateKey
            svc, _, action = target.partition(".")
            try:
                params = json.loads(body or b"{}")
            except ValueError:
                params = {}
            return svc, action, params
        form = urllib.parse.parse_qs(body.decode("utf-8", "replace")) if body else {}
        action = (form.get("Action") or ["?"])[0]
        return "ec2", action, form

    def _should_throttle(self, action):
        with self.lock:
            n = self._seen.get(action, 0)
            self._seen[action] = n + 1
            return n < self._throttle_first

    def start(self):
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                svc, action, params = proxy._classify(self.headers, body)
                barrier = None
                with proxy.lock:
                    entry = proxy._barriers.get(action)
                    if entry is not None and entry[1] > 0:
                        entry[1] -= 1
                        barrier = entry[0]
                if barrier is not None:
                    try:
                        barrier.wait()
                    except threading.BrokenBarrierError:
                        pass
                with proxy.lock:
                    error = proxy._errors.get(action)
                if error is not None:
                    with proxy.lock:
                        proxy.calls.append(Call(svc, action, params, False))
                    if self.headers.get("X-Amz-Target"):
                        status, ctype = 400, "application/x-amz-json-1.1"
                        payload = json.dumps({"__type": error[0], "message": error[1]}).encode()
                    else:
                        status, ctype = 403 if error[0] == "UnauthorizedOperation" else 400, "text/xml"
                        payload = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Errors><Error>"
                                   "<Code>%s</Code><Message>%s</Message></Error></Errors>"
                                   "<RequestID>denied</RequestID></Response>" % error).encode()
                    self.send_response(status)
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(payload)))
                    self.send_header("x-amzn-RequestId", "denied")
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                injected = proxy._take(proxy._fail_first, action)
                if injected is not None:
                    with proxy.lock:
                        proxy.calls.append(Call(svc, action, params, False, error=injected[0], forwarded=False))
                    proxy._send_error(self, bool(self.headers.get("X-Amz-Target")), *injected)
                    return
                lost = proxy._take(proxy._fail_after, action)
                if lost is not None:
                    with proxy.lock:
                        proxy.calls.append(Call(svc, action, params, False, error=lost[0]))
                    conn = http.client.HTTPConnection(proxy.upstream.hostname, proxy.upstream.port, timeout=60)
                    headers = dict((k, v) for k, v in self.headers.items()
                                   if k.lower() not in ("connection", "keep-alive"))
                    conn.request(self.command, self.path, body=body, headers=headers)
                    conn.getresponse().read()  # moto applied it; the client never sees the answer
                    conn.close()
                    proxy._send_error(self, bool(self.headers.get("X-Amz-Target")), *lost)
                    return
                throttled = proxy._should_throttle(action)
                with proxy.lock:
                    proxy.calls.append(Call(svc, action, params, throttled))
                if throttled:
                    if self.headers.get("X-Amz-Target"):
                        status, ctype = 400, "application/x-amz-json-1.1"
                        payload = json.dumps({"__type": "ThrottlingException", "message": "Rate exceeded"}).encode()
                    else:
                        status, ctype = 503, "text/xml"
                        payload = (b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Errors><Error>"
                                   b"<Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message>"
                                   b"</Error></Errors><RequestID>throttle</RequestID></Response>")
                    self.send_response(status)
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(payload)))
                    self.send_header("x-amzn-RequestId", "throttle")
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                conn = http.client.HTTPConnection(proxy.upstream.hostname, proxy.upstream.port, timeout=60)
                headers = dict((k, v) for k, v in self.headers.items() if k.lower() not in ("connection", "keep-alive"))
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length", "server", "date"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                conn.close()

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return "http://127.0.0.1:%d" % self._server.server_address[1]

    def stop(self):
        if self._server:
            self._server.shutdown()
            self._server.server_close()


@pytest.fixture(scope="session")
def proxy_server(moto):
    p = Proxy(moto)
    p.url = p.start()
    yield p
    p.stop()


@pytest.fixture
def proxy(proxy_server):
    proxy_server.reset()
    yield proxy_server
    proxy_server.reset()


# ------------------------------------------------------------------------------------------------
# boto3 clients talking to moto directly (not counted by the proxy)
# ------------------------------------------------------------------------------------------------
def _client(moto, service):
    return boto3.client(service, endpoint_url=moto, region_name=REGION, aws_access_key_id="testing",
                        aws_secret_access_key="testing")


@pytest.fixture(scope="session")
def ssm(moto):
    return _client(moto, "ssm")


@pytest.fixture(scope="session")
def ec2(moto):
    return _client(moto, "ec2")


@pytest.fixture(scope="session")
def kms(moto):
    return _client(moto, "kms")


@pytest.fixture(scope="session")
def ami(ec2):
    """An image moto knows (run_instances checks the AMI exists)."""
    return ec2.describe_images(Owners=["amazon"], MaxResults=5)["Images"][0]["ImageId"]


@pytest.fixture
def cluster():
    """A fresh cluster name per test, so tests never see each other's parameters."""
    return "t%s" % uuid.uuid4().hex[:10]


# ------------------------------------------------------------------------------------------------
# running modules
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def collection_root(tmp_path_factory):
    """A collections path holding this checkout as sesacthon.kubeadm_aws."""
    root = tmp_path_factory.mktemp("collections")
    ns = root / "ansible_collections" / "sesacthon"
    ns.mkdir(parents=True)
    (ns / "kubeadm_aws").symlink_to(REPO, target_is_directory=True)
    return root


@pytest.fixture(scope="session")
def base_env(collection_root):
    env = dict(os.environ)
    for k in list(env):
        if k.startswith("AWS_") or k.startswith("ANSIBLE_"):
            del env[k]
    env.update(CREDS_ENV)
    env["PYTHONPATH"] = str(collection_root)
    return env


class ModuleResult(dict):
    def __init__(self, data, rc, stdout, stderr):
        super(ModuleResult, self).__init__(data)
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr


def _module_cmd(name, args, endpoint, check, tmpdir):
    full = dict(args)
    if endpoint is not None and "endpoint_url" not in full:
        full["endpoint_url"] = endpoint
    full["_ansible_check_mode"] = bool(check)
    full.setdefault("_ansible_no_log", False)
    path = Path(tmpdir) / ("args-%s.json" % uuid.uuid4().hex)
    path.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": full}))
    return [sys.executable, str(REPO / "plugins" / "modules" / ("%s.py" % name)), str(path)]


def _parse(proc_stdout, rc, stderr):
    text = proc_stdout.strip()
    start = text.find("{")
    try:
        data = json.loads(text[start:]) if start >= 0 else {}
    except ValueError:
        data = {"_unparsed": text}
    return ModuleResult(data, rc, proc_stdout, stderr)


@pytest.fixture
def run_module(proxy, base_env, tmp_path):
    """run_module(name, args, check=False, env=None, endpoint=<proxy>) -> dict result (with .rc)."""

    def run(name, args, check=False, env=None, endpoint=None, timeout=120):
        cmd = _module_cmd(name, args, endpoint or proxy.url, check, tmp_path)
        e = dict(base_env)
        e.update(env or {})
        p = subprocess.run(cmd, env=e, capture_output=True, text=True, timeout=timeout)
        return _parse(p.stdout, p.returncode, p.stderr)

    def start(name, args, check=False, env=None, endpoint=None):
        """Start a module process without waiting (for concurrency tests); returns a Popen."""
        cmd = _module_cmd(name, args, endpoint or proxy.url, check, tmp_path)
        e = dict(base_env)
        e.update(env or {})
        return subprocess.Popen(cmd, env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def finish(popen, timeout=120):
        out, err = popen.communicate(timeout=timeout)
        return _parse(out, popen.returncode, err)

    run.start = start
    run.finish = finish
    return run


@pytest.fixture(scope="session")
def ansible_env(base_env, collection_root, tmp_path_factory):
    d = tmp_path_factory.mktemp("ansible")
    cfg = d / "ansible.cfg"
    cfg.write_text(
        "[defaults]\n"
        "collections_path = %s\n"
        "interpreter_python = %s\n"
        "host_key_checking = False\n"
        "retry_files_enabled = False\n"
        "log_path = %s\n"
        "stdout_callback = default\n"
        "result_format = json\n" % (collection_root, sys.executable, d / "ansible.log")
    )
    env = dict(base_env)
    env["ANSIBLE_CONFIG"] = str(cfg)
    env["ANSIBLE_LOCAL_TEMP"] = str(d / "tmp")
    env["ANSIBLE_HOME"] = str(d / "home")
    env["ANSIBLE_NOCOLOR"] = "1"
    env["ANSIBLE_FORCE_COLOR"] = "0"
    env["_LOG_PATH"] = str(d / "ansible.log")
    return env


@pytest.fixture
def run_playbook(ansible_env, tmp_path):
    """run_playbook(yaml_text, verbosity=0) -> CompletedProcess (stdout+stderr in .stdout)."""

    def run(text, verbosity=0, extra=None, check=False):
        pb = tmp_path / ("play-%s.yml" % uuid.uuid4().hex)
        pb.write_text(text)
        cmd = [str(VENV_BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local", str(pb)]
        if verbosity:
            cmd.append("-" + "v" * verbosity)
        if check:
            cmd.append("--check")
        cmd += extra or []
        return subprocess.run(cmd, env=ansible_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=300)

    run.log_path = ansible_env["_LOG_PATH"]
    return run


@pytest.fixture
def run_adhoc(ansible_env, proxy):
    """run_adhoc(fqcn, args_dict, verbosity=0) -> CompletedProcess; args are passed as JSON."""

    def run(module, args, verbosity=0, check=False):
        full = dict(args)
        full.setdefault("endpoint_url", proxy.url)
        cmd = [str(VENV_BIN / "ansible"), "localhost", "-i", "localhost,", "-c", "local", "-m", module,
               "-a", json.dumps(full)]
        if verbosity:
            cmd.append("-" + "v" * verbosity)
        if check:
            cmd.append("--check")
        return subprocess.run(cmd, env=ansible_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=300)

    return run
