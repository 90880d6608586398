"""The manager's console in a real browser: headless Chromium (Debian's `chromium` and `chromium-driver`,
driven by Selenium; `.ci/run` installs them) against `till serve` on its embedded defaults (the bundled Metrc
simulator, steered through its /_sim/ endpoints).

Run:  cd <repo> && python3 -m unittest discover -s Tests/Console -v
Env:  TILL_BIN (default .build/debug/till); TILL_CONSOLE_SCREENSHOT=path.png saves the console once it has
      closed the day (how docs/console.png was made).
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request
from pathlib import Path
from typing import Any, Callable

sys.dont_write_bytecode = True
REPO = Path(__file__).resolve().parents[2]


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float = 10) -> None:
        super().__init__("till", timeout=timeout)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


class ConsoleInChromiumTests(unittest.TestCase):
    def setUp(self) -> None:
        missing = [name for name in ("chromium", "chromedriver") if shutil.which(name) is None]
        try:
            from selenium import webdriver  # noqa: F401
        except ImportError:
            missing.append("selenium (pip)")
        self.assertEqual(missing, [], "the console's test needs these (`.ci/run` installs them)")
        self.binary = os.environ.get("TILL_BIN") or str(REPO / ".build/debug/till")
        self.root = tempfile.mkdtemp(prefix="till-console-")
        self.addCleanup(shutil.rmtree, self.root, ignore_errors=True)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("TILL_") or k == "TILL_BIN"}
        # A sale whose POST met a 503 is in doubt: re-sent 5 s after, not the default 120, within the test's patience.
        self.env.update({"TILL_DATA_DIR": os.path.join(self.root, "data"), "TILL_CONSOLE_ADDR": "127.0.0.1:0",
                         "TILL_LOG_LEVEL": "warning", "TILL_METRC_TIMEOUT_S": "2", "TILL_METRC_IN_DOUBT_S": "5"})
        self.manager = self.command("terminals", "add", "manager-1", "--role", "manager")
        self.register = self.command("terminals", "add", "register-1", "--role", "register")
        log = open(os.path.join(self.root, "till.log"), "w")
        self.addCleanup(log.close)
        self.till = subprocess.Popen([self.binary, "serve"], env=self.env, stdout=log, stderr=subprocess.STDOUT)
        self.addCleanup(self.stop_till)
        data = Path(self.env["TILL_DATA_DIR"])
        self.wait_for(lambda: (data / "console.url").exists() and (data / "simulator.url").exists(), 30, "till serve to start")
        self.console = (data / "console.url").read_text().strip()
        self.simulator = (data / "simulator.url").read_text().strip()
        self.socket = str(data / "till.sock")
        self.browser = self.start_browser()
        self.addCleanup(self.browser.quit)

    def stop_till(self) -> None:
        self.till.terminate()
        try:
            self.till.wait(15)
        except subprocess.TimeoutExpired:
            self.till.kill()

    def command(self, *args: str) -> str:
        done = subprocess.run([self.binary, *args], env=self.env, capture_output=True, text=True, timeout=60, check=True)
        return done.stdout.strip().splitlines()[-1]

    def start_browser(self) -> Any:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
        options = webdriver.ChromeOptions()
        options.binary_location = shutil.which("chromium")
        for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1600"):
            options.add_argument(argument)
        return webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)

    def wait_for(self, condition: Callable[[], Any], seconds: float, what: str) -> Any:
        deadline = time.time() + seconds
        while time.time() < deadline:
            try:
                value = condition()
                if value:
                    return value
            except Exception:  # the page may be between renders
                pass
            time.sleep(0.2)
        log = Path(self.root, "till.log").read_text()[-3000:] if Path(self.root, "till.log").exists() else ""
        self.fail(f"timed out after {seconds}s waiting for {what}\n--- till log ---\n{log}")

    def till_api(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        connection = _UnixConnection(self.socket)
        headers = {"Authorization": f"Bearer {self.register}"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        connection.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
        response = connection.getresponse()
        data = response.read()
        connection.close()
        return response.status, json.loads(data) if data else None

    def simulate(self, method: str, path: str, body: str = "") -> tuple[int, Any]:
        request = urllib.request.Request(self.simulator + path, method=method, data=body.encode() if body else None,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            data = response.read()
            return response.status, json.loads(data) if data else None

    def css(self, selector: str) -> list[Any]:
        from selenium.webdriver.common.by import By
        return self.browser.find_elements(By.CSS_SELECTOR, selector)

    def log_in(self, token: str) -> None:
        self.css("#login-token")[0].clear()
        self.css("#login-token")[0].send_keys(token)
        self.css("#login-button")[0].click()

    def test_a_manager_logs_in_sees_a_sale_reported_a_difference_repaired_and_the_day_closed(self) -> None:
        self.browser.get(self.console)
        self.wait_for(lambda: self.css("#login-section")[0].is_displayed(), 10, "the login form")

        # A register's token does not open the console.
        self.log_in(self.register)
        self.wait_for(lambda: "manager" in self.css("#login-error")[0].text, 10, "the register's token refused")
        self.assertFalse(self.css("#console")[0].is_displayed())

        # Metrc is down: the sale is journaled and pending.
        self.simulate("POST", "/_sim/faults", json.dumps([{"status": 503, "method": "POST", "pathPrefix": "/sales/v2/receipts"}]))
        status, sale = self.till_api("POST", "/v1/sales", {
            "clientSaleId": "console-1", "customerType": "Consumer",
            "lines": [{"packageLabel": "1A4FF0100000022000000101", "quantity": 1, "unit": "Grams", "totalAmount": 10.00}]})
        self.assertEqual(status, 202, sale)
        number = sale["receiptNumber"]

        self.log_in(self.manager)
        self.wait_for(lambda: self.css("#console")[0].is_displayed(), 10, "the console")
        status_cell = f'#sales tr[data-receipt="{number}"] td.status'
        self.wait_for(lambda: self.css(status_cell)[0].text == "pending_report", 10, "the sale shown pending")

        # Metrc answers again: the page shows it reported, by itself.
        self.simulate("DELETE", "/_sim/faults")
        self.wait_for(lambda: self.css(status_cell)[0].text == "reported", 30, "the sale shown reported")

        # Someone edits the receipt on Metrc's website: the day view shows the difference.
        _, receipts = self.simulate("GET", "/_sim/receipts")
        receipt = next(r for r in receipts if r["ExternalReceiptNumber"] == number)
        edit = [{"Id": receipt["Id"], "SalesDateTime": receipt["SalesDateTime"], "SalesCustomerType": "Consumer",
                 "ExternalReceiptNumber": number,
                 "Transactions": [{"PackageLabel": "1A4FF0100000022000000101", "Quantity": 2, "UnitOfMeasure": "Grams",
                                   "TotalAmount": 20.00}]}]
        self.assertEqual(self.simulate("PUT", "/_sim/website/sales/v2/receipts", json.dumps(edit))[0], 200)
        self.css("#day-load")[0].click()
        row = f'#day-receipts tr[data-receipt="{number}"]'
        self.wait_for(lambda: self.css(row)[0].get_attribute("data-standing") == "changed_in_metrc", 15, "the difference")
        self.assertIn("quantity 2 in Metrc, 1 in Till", self.css(row)[0].text)

        # A close is refused while it differs; the repair's dry run lists the edit back, then sends it.
        self.css("#close-day")[0].click()
        self.wait_for(lambda: self.css("#close-result")[0].get_attribute("data-status") == "blocked", 15, "the close refused")
        self.assertIn(number, self.css("#close-result")[0].text)
        self.css("#repair-dry")[0].click()
        self.wait_for(lambda: "receipt.update " + number in self.css("#repair-result")[0].text, 15, "the dry run")
        self.css("#repair-send")[0].click()
        self.wait_for(lambda: self.css("#repair-result")[0].text.startswith("Sent"), 15, "the repair sent")
        self.wait_for(lambda: (self.css("#day-load")[0].click() or True)
                      and self.css(row)[0].get_attribute("data-standing") == "matched", 30, "Metrc put back")

        # The day closes.
        self.css("#close-day")[0].click()
        self.wait_for(lambda: self.css("#close-result")[0].get_attribute("data-status") == "closed", 30, "the day closed")
        self.wait_for(lambda: self.css("#day-summary")[0].get_attribute("data-close") == "closed", 15, "the day view closed")
        _, receipts = self.simulate("GET", "/_sim/receipts")
        self.assertTrue(next(r for r in receipts if r["ExternalReceiptNumber"] == number)["IsFinal"])
        if os.environ.get("TILL_CONSOLE_SCREENSHOT"):
            self.browser.save_screenshot(os.environ["TILL_CONSOLE_SCREENSHOT"])


if __name__ == "__main__":
    unittest.main()
