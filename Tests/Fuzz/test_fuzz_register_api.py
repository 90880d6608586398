"""The register API fuzzed: schemathesis against the real `till serve` and its OpenAPI document.

`till serve` runs on its embedded defaults (the bundled Metrc simulator) in a temporary folder; schemathesis
reaches its Unix socket through `bridge.py` (TCP to the socket, byte for byte). It runs twice, with a
register's token and with a manager's, and must find no server error (5xx), no crash (the server still up
and stopping cleanly on SIGTERM), and every answer as the document says: status codes, content types,
headers and response schemas. Schema-breaking requests must be refused (4xx), methods the document does
not list must get 405 with `Allow`, and a request without the token must get 401. It prints how many
requests it tried. Bounded: a fixed seed and a number of examples per operation (under a minute here).

Each request asks for `Connection: close`: Till refuses a connection's requests after 5 failed tokens, and
schemathesis sends tokenless requests on purpose; a connection each keeps those from throttling the rest.

Some generated values are drawn from what the simulator knows (package labels, patient and caregiver
numbers, sale ids, today's date, plain quantities and amounts), so that requests reach the sale path, not
only "not found" and the decoder's refusals.

Run:  cd <repo> && python3 -m unittest discover -s Tests/Fuzz -v       (`.ci/run` pip-installs schemathesis)
Env:  TILL_BIN (default .build/debug/till); TILL_FUZZ_EXAMPLES (default 40 per operation); TILL_FUZZ_SEED;
      TILL_FUZZ_REPORTS=DIR keeps schemathesis's HAR and NDJSON reports there.
"""

from __future__ import annotations

import datetime
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
from pathlib import Path
from zoneinfo import ZoneInfo

sys.dont_write_bytecode = True
REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent

CHECKS = ",".join([
    "not_a_server_error", "status_code_conformance", "content_type_conformance", "response_headers_conformance",
    "response_schema_conformance", "negative_data_rejection", "missing_required_header", "unsupported_method",
    "allow_header_conformance", "ignored_auth",
])
# Not checked: positive_data_acceptance (a request the schema allows may still be refused by the rules:
# stock, allowances, unknown packages), and the stateful checks (the document has no links).

LABELS = [f"1A4FF0100000022000000{n}" for n in (101, 104, 106, 110, 113, 120, 121)]
LICENSES = ["PT-ACTIVE-0001", "PT-INACTIVE-0002", "PT-EXPIRED-0003", "PT-LOW-0004", "PT-LINKED-0005",
            "CG-ACTIVE-0001", "CG-INACTIVE-0002"]


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float = 10) -> None:
        super().__init__("till", timeout=timeout)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


def _toml(value: object) -> str:
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    return str(value)


def schemathesis_config(today: str) -> str:
    """Dictionaries of values the simulator knows, each used for part of the generated requests."""
    dictionaries = {
        "labels": LABELS, "licenses": LICENSES, "ids": [1, 2, 3, 4, 5, 6], "units": ["Grams", "Each", "Ounces"],
        "days": [today], "locations": [1, 2], "reasons": ["Defective", "Wrong item"],
        "quantities": [1, 2, 3.5], "amounts": [10, 35.1],
    }
    parameters = {
        "path.license": ("licenses", 0.7), "path.id": ("ids", 0.7), "path.date": ("days", 0.6),
        "query.date": ("days", 0.6),
        "body.lines[*].packageLabel": ("labels", 0.8), "body.lines[*].unit": ("units", 0.6),
        "body.lines[*].quantity": ("quantities", 0.7), "body.lines[*].totalAmount": ("amounts", 0.7),
        "body.patientLicenseNumber": ("licenses", 0.6), "body.caregiverLicenseNumber": ("licenses", 0.6),
        "body.checkInLocationId": ("locations", 0.6), "body.reason": ("reasons", 0.6),
    }
    lines = []
    for name, values in dictionaries.items():
        lines += [f"[dictionaries.{name}]", f"values = {_toml(values)}", ""]
    lines.append("[parameters]")
    for key, (dictionary, probability) in parameters.items():
        lines.append(f"{json.dumps(key)} = {_toml({'dictionary': dictionary, 'probability': probability})}")
    return "\n".join(lines) + "\n"


class RegisterAPIFuzzTests(unittest.TestCase):
    def setUp(self) -> None:
        self.assertIsNotNone(shutil.which("st") or self._has_module(), "schemathesis is needed (`.ci/run` installs it)")
        self.binary = os.environ.get("TILL_BIN") or str(REPO / ".build/debug/till")
        self.root = tempfile.mkdtemp(prefix="till-fuzz-")
        self.addCleanup(shutil.rmtree, self.root, ignore_errors=True)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("TILL_") or k == "TILL_BIN"}
        # A long deadline (the patient lookups' patience too): on a loaded machine, with the fuzzer's day views
        # using Metrc's GET budget, a lookup that waits its turn must not turn into a 503 metrc_unavailable,
        # which is Till's documented answer to a Metrc that does not answer, tested with faults elsewhere.
        self.env.update({"TILL_DATA_DIR": os.path.join(self.root, "data"), "TILL_CONSOLE_ADDR": "off",
                         "TILL_LOG_LEVEL": "warning", "TILL_REPORT_DEADLINE_MS": "10000", "TILL_METRC_TIMEOUT_S": "10",
                         "TILL_METRC_IN_DOUBT_S": "30", "TILL_REGISTER_RETURNS": "true"})
        self.socket = os.path.join(self.root, "data", "till.sock")
        self.tokens = {role: self.command("terminals", "add", f"fuzz-{role}", "--role", role)
                       for role in ("register", "manager")}
        self.log = open(os.path.join(self.root, "till.log"), "w")
        self.addCleanup(self.log.close)
        self.till = subprocess.Popen([self.binary, "serve"], env=self.env, stdout=self.log, stderr=subprocess.STDOUT)
        self.addCleanup(self._stop, self.till)
        self.wait_until_answering()
        self.bridge = subprocess.Popen([sys.executable, str(HERE / "bridge.py"), self.socket], stdout=subprocess.PIPE,
                                       text=True)
        self.addCleanup(self._stop, self.bridge)
        self.port = int(self.bridge.stdout.readline())

    @staticmethod
    def _has_module() -> bool | None:
        try:
            import schemathesis  # noqa: F401
            return True
        except ImportError:
            return None

    @staticmethod
    def _stop(process: subprocess.Popen) -> None:
        if process.poll() is None:
            process.kill()
            process.wait()

    def command(self, *arguments: str) -> str:
        done = subprocess.run([self.binary, *arguments], env=self.env, capture_output=True, text=True, timeout=60)
        self.assertEqual(done.returncode, 0, done.stderr)
        return done.stdout.strip().splitlines()[-1]

    def wait_until_answering(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            self.assertIsNone(self.till.poll(), "till serve stopped while starting: " + self.log_text())
            connection = _UnixConnection(self.socket, timeout=2)
            try:
                connection.request("GET", "/v1/packages", headers={"Authorization": f"Bearer {self.tokens['manager']}"})
                answer = connection.getresponse()
                if answer.status == 200 and json.loads(answer.read()).get("packages"):
                    return
            except OSError:
                pass
            finally:
                connection.close()
            time.sleep(0.1)
        self.fail("till serve did not answer within 30 s: " + self.log_text())

    def log_text(self) -> str:
        self.log.flush()
        return Path(self.root, "till.log").read_text(errors="replace")[-3000:]

    def fuzz(self, role: str, reports: Path, examples: int, seed: int) -> tuple[int, int]:
        """One schemathesis run with `role`'s token: its exit status, and how many cases it generated."""
        today = datetime.datetime.now(ZoneInfo("America/Denver")).date().isoformat()  # the simulator's facility
        config = Path(self.root, "schemathesis.toml")
        config.write_text(schemathesis_config(today))
        har = reports / f"{role}.har.json"
        # One worker: schemathesis's threads meet a CPython 3.11 bug in ast.parse ("AST constructor recursion depth
        # mismatch") under Hypothesis, and one keeps a seed's run the same from run to run.
        arguments = [
            sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "run",
            str(REPO / "Sources/TillAPI/openapi.json"), "--url", f"http://127.0.0.1:{self.port}",
            "-H", f"Authorization: Bearer {self.tokens[role]}", "-H", "Connection: close",
            "--checks", CHECKS, "--max-examples", str(examples), "--seed", str(seed), "--workers", "1",
            "--continue-on-failure", "--request-timeout", "30",
            "--report", "har,ndjson", "--report-har-path", str(har),
            "--report-ndjson-path", str(reports / f"{role}.ndjson"),
        ]
        done = subprocess.run(arguments, env=self.env, capture_output=True, text=True, timeout=300, cwd=self.root)
        print(f"\n---- schemathesis with a {role}'s token ----\n" + done.stdout[-6000:] + done.stderr[-2000:], flush=True)
        requests = len(json.loads(har.read_text())["log"]["entries"]) if har.exists() else 0
        return done.returncode, requests

    def test_no_server_error_no_crash_and_every_answer_as_documented(self) -> None:
        examples = int(os.environ.get("TILL_FUZZ_EXAMPLES", "40"))
        seed = int(os.environ.get("TILL_FUZZ_SEED", "20261206"))
        reports = Path(os.environ.get("TILL_FUZZ_REPORTS") or Path(self.root, "reports"))
        reports.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        outcomes = {role: self.fuzz(role, reports, examples, seed) for role in ("register", "manager")}
        elapsed = time.monotonic() - started

        alive = self.till.poll() is None
        if alive:
            self.till.send_signal(signal.SIGTERM)
            try:
                status = self.till.wait(timeout=15)
            except subprocess.TimeoutExpired:
                status = None
        else:
            status = self.till.returncode
        # Every request came on a connection of its own (Connection: close): the bridge's count is the requests
        # sent, the checks' own (no token, other methods) included; the reports count the generated cases.
        self.bridge.send_signal(signal.SIGTERM)
        counted = self.bridge.communicate(timeout=10)[0].split()
        tried = int(counted[-1]) if counted and counted[-1].isdigit() else 0
        cases = sum(requests for _, requests in outcomes.values())
        print(f"fuzz: {tried} requests tried in {elapsed:.0f} s, {cases} generated cases (register token "
              f"{outcomes['register'][1]}, manager token {outcomes['manager'][1]}; {examples} examples per operation, "
              f"seed {seed}); "
              f"schemathesis exit {outcomes['register'][0]} and {outcomes['manager'][0]}; "
              f"till serve {'up, then exited ' + str(status) + ' on SIGTERM' if alive else 'DIED: ' + str(status)}",
              flush=True)
        self.assertTrue(alive, "till serve crashed under fuzzing: " + self.log_text())
        self.assertEqual(status, 0, "till serve did not stop cleanly on SIGTERM: " + self.log_text())
        self.assertGreater(tried, 1000, "schemathesis sent too few requests to mean anything")
        self.assertGreaterEqual(tried, cases, "fewer requests reached Till than schemathesis generated")
        for role, (code, _) in outcomes.items():
            self.assertEqual(code, 0, f"schemathesis found failures with the {role}'s token (see its output above)")


if __name__ == "__main__":
    unittest.main()
