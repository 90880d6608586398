"""An independent Metrc v2 (retail subset) for testing Till from the outside.

Written only from Metrc's documentation as the project keeps it:

* ``../shared/metrc/README.md`` (beside this repository) -- the behavioural notes, with confidence levels
  (**doc**, **seen**, **unsure**); every **unsure** point is a switch here;
* ``../shared/metrc/metrc-v2-retail.openapi.yaml`` -- the community OpenMetrc specification:
  paths, verbs, field names (it spells properties camelCase; Metrc answers PascalCase, so this server
  answers PascalCase by default and camelCase when ``casing = "camel"``, and reads requests
  case-insensitively);
* ``../shared/seeds/001_abed62541f86158e.txt`` -- the field guide (object limit 10 → 413,
  429 with Retry-After, pageSize at most 20, ``%2B`` in offsets).

It deliberately shares no code and no reading with Till's own simulator or client.

Python 3.11 standard library only. Use in-process::

    metrc = IndependentMetrc()
    metrc.start()              # http://127.0.0.1:<port>
    metrc.add_fault("status", status=503, body="html", method="POST", path="/sales/v2/receipts", count=3)
    ...
    metrc.receipts()           # what Metrc holds
    metrc.stop()

All state is behind one lock; every accessor returns copies. Switches (attributes of IndependentMetrc):
``casing``, ``timestamp_style``, ``rate_limit_retry_after``, ``get_rate_per_facility`` / ``_per_integrator``,
``max_concurrent_gets_per_facility``, ``object_limit``, ``external_unknown`` (404 / 401 / empty),
``external_shape`` (envelope / object / array), ``customer_types_shape``, ``patient_status_shape``,
``caregiver_patients_shape``, ``unknown_person``, ``error_row_casing``, ``close_after_answer``,
``checkin_list_filter``, ``external_matches``, ``edit_external_number``, ``archive_again``, ``write_answer``,
``adjustments_spelling``, ``adjust_date_format``, ``receipt_lines_spelling``, ``delivery_lines_read``,
``retailer_list_window``;
faults via ``add_fault`` (status, status_after_commit, drop_before_commit, drop_after_commit, empty_200,
latency, hold_then_apply; ``exact=True`` matches one path only, not the paths under it); Metrc-side edits via ``set_package``, ``set_facility_type``,
``revoke_access`` / ``restore_access``, ``set_patient_registrations``, ``seed_patients``, ``seed_checkins``,
``plant_receipt`` / ``duplicate_receipt`` (a receipt recorded as Metrc's website or another POST would),
``set_receipt`` (e.g. finalized on the website), ``website_edit`` (lines or SalesDateTime changed on the website,
applied as a PUT), ``website_archive``, ``lose_receipt`` (a receipt Metrc no longer has at all),
``set_adjust_reasons``, ``plant_adjustment``.
Receipt listings (GET /sales/v2/receipts/active|inactive): salesDateStart/End (instants with a zone; a receipt's
local SalesDateTime is read in the facility's zone, so a day across a clock change is 23 or 25 hours) or
lastModifiedStart/End, never both, each window at most 24 hours, ends inclusive.
Package adjustments: GET /packages/v2/adjust/reasons, POST /packages/v2/adjust, GET /packages/v2/adjustments
(``adjustments()``, ``adjust_posts()``).
Deliveries (README "Deliveries", the spec's /sales/v2/deliveries* paths, docs/deliveries.md where both are silent):
sales deliveries (POST/PUT /sales/v2/deliveries, PUT .../complete, DELETE/GET .../{id}, GET .../active|inactive,
GET .../returnreasons, PUT .../hub[/accept|/depart|/verifyID] for a delivery hub only) and retailer deliveries or
"trips" (POST/PUT .../retailer, POST .../retailer/depart|sale|restock|end, DELETE/GET .../retailer/{id},
GET .../retailer/active|inactive). A package's Quantity counts the shop and the vehicles; what active trips carry
cannot be sold at the counter, delivered or adjusted away (``shop_quantity``, ``carried_quantity``). Read with
``deliveries()``, ``delivery()``, ``trips()``, ``trip()``, ``delivery_requests()``; Metrc-side actions:
``plant_delivery``, ``website_edit_delivery``, ``website_complete_delivery``, ``website_void_delivery``,
``plant_trip``, ``website_depart_trip``, ``website_end_trip``, ``website_void_trip``, ``set_return_reasons``;
delivery flags by ``set_facility_type`` (e.g. ``RetailerDelivery=False``).
Every request is kept (``requests()``, ``receipt_posts()``) with its method, path, raw query, body, whether
its Basic auth was good, its licenseNumber, the status answered (None: dropped) and the fault met.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import decimal
import http.server
import itertools
import json
import re
import socket
import threading
import time
import urllib.parse
import zoneinfo
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Callable, Optional

# Exact arithmetic for quantities (Ounces = 28.349523125 Grams exactly, and so on).
_CTX = decimal.Context(prec=60)

LICENSE = "LIC-INDEP-0042"
SECOND_LICENSE = "LIC-INDEP-0043"  # a cultivation facility the same keys can access
FOREIGN_LICENSE = "LIC-OTHER-9999"  # exists in Metrc, but these keys have no access to it
VENDOR_KEY = "indep-vendor-key-7Qx"
USER_KEY = "indep-user-key-3Zp"

# --------------------------------------------------------------------------------------------------
# Units of measure (GET /unitsofmeasure/v2/active): name, quantity type, abbreviation, and the exact
# factor to the base unit of its kind (grams, millilitres, each).
UNITS: dict[str, tuple[str, str, Decimal]] = {
    "Each": ("CountBased", "ea", Decimal(1)),
    "Grams": ("WeightBased", "g", Decimal(1)),
    "Milligrams": ("WeightBased", "mg", Decimal("0.001")),
    "Kilograms": ("WeightBased", "kg", Decimal(1000)),
    "Ounces": ("WeightBased", "oz", Decimal("28.349523125")),
    "Pounds": ("WeightBased", "lb", Decimal("453.59237")),
    "Milliliters": ("VolumeBased", "ml", Decimal(1)),
    "Liters": ("VolumeBased", "l", Decimal(1000)),
    "Fluid Ounces": ("VolumeBased", "fl oz", Decimal("29.5735295625")),
}

CUSTOMER_TYPES = ["Consumer", "Patient", "Caregiver", "ExternalPatient"]  # + NonResidentConsumer in some states
# GET /sales/v2/deliveries/returnreasons: (Name, RequiresNote). docs/deliveries.md: "Spoilage, Customer Refused (no
# note), Damaged, Other (note required)".
DELIVERY_RETURN_REASONS = [("Spoilage", False), ("Customer Refused", False), ("Damaged", True), ("Other", True)]

_LOCAL_DT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,7})?$")
_HAS_ZONE = re.compile(r"(Z|z|[+-]\d{2}:?\d{2})$")


def _unit(name: Any) -> Optional[str]:
    """A unit name as Metrc spells it, matched case-insensitively; None when unknown."""
    if not isinstance(name, str):
        return None
    for known in UNITS:
        if known.lower() == name.strip().lower():
            return known
    return None


def convert(quantity: Decimal, from_unit: str, to_unit: str) -> Optional[Decimal]:
    """Exact conversion between units of one kind; None when the kinds differ."""
    kind_a, _, fa = UNITS[from_unit]
    kind_b, _, fb = UNITS[to_unit]
    if kind_a != kind_b:
        return None
    return _CTX.divide(_CTX.multiply(quantity, fa), fb)


# --------------------------------------------------------------------------------------------------
# JSON: exact decimals out, exact decimals in.

def dumps(value: Any) -> str:
    """JSON text with Decimals written exactly (never through float)."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, Decimal):
        text = format(value, "f")
        if "." in text:
            text = text.rstrip("0").rstrip(".")
        return text or "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, dict):
        return "{" + ",".join(json.dumps(str(k)) + ":" + dumps(v) for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(dumps(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value)!r} as JSON")


def loads(text: bytes | str) -> Any:
    return json.loads(text, parse_float=Decimal)


def camel(value: Any) -> Any:
    """The same JSON with every property name starting lower-case (``Data`` → ``data``)."""
    if isinstance(value, dict):
        return {(k[:1].lower() + k[1:]): camel(v) for k, v in value.items()}
    if isinstance(value, list):
        return [camel(v) for v in value]
    return value


def field_ci(obj: Any, name: str, default: Any = None) -> Any:
    """A property read case-insensitively (Metrc, an ASP.NET service, binds request bodies so)."""
    if not isinstance(obj, dict):
        return default
    if name in obj:
        return obj[name]
    lowered = name.lower()
    for key, value in obj.items():
        if isinstance(key, str) and key.lower() == lowered:
            return value
    return default


def _decimal(value: Any) -> Optional[Decimal]:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, Decimal)):
        return Decimal(value)
    return None


def utc_stamp(moment: dt.datetime, style: str = "Z") -> str:
    moment = moment.astimezone(dt.timezone.utc).replace(microsecond=0)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    return text + ("Z" if style == "Z" else "+00:00")


def parse_filter_instant(text: str) -> Optional[dt.datetime]:
    """A query filter: ISO 8601 with Z or an offset. A '+' sent unencoded arrives as a space and
    does not parse (the field guide: "your filter is silently misread")."""
    if not text or " " in text:
        return None
    candidate = text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text
    try:
        moment = dt.datetime.fromisoformat(candidate)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return moment


# --------------------------------------------------------------------------------------------------
# Faults and records

FAULT_KINDS = ("status", "status_after_commit", "drop_before_commit", "drop_after_commit", "empty_200", "latency",
               "hold_then_apply")


@dataclass
class Fault:
    """A switch the tests flip. Matches requests by method and path prefix (None matches all).

    kind:
      * ``status``: answer ``status`` at once, nothing applied. ``body``: ``html`` (503 page),
        ``assembly`` (``{"Message":"Could not load file or assembly ..."}``), ``message``
        (``{"Message":...}``), ``empty``. ``retry_after``: a Retry-After header value or None.
      * ``status_after_commit``: apply the request, then answer as ``status`` would (a 5xx after sending).
      * ``drop_before_commit``: close the connection without answering; nothing applied.
      * ``drop_after_commit``: apply the request, then close the connection without answering.
      * ``empty_200``: apply the request; a success is answered 200 with an empty body.
      * ``latency``: wait ``seconds`` before handling (other faults still apply).
      * ``hold_then_apply``: hold the request ``seconds`` (the whole request already read), then apply it
        exactly as without the fault, whether or not the client is still there (gave up, timed out, was
        killed), and only then try to send the normal answer; a client that has gone is ignored.
        README: a timeout or dropped connection is an ambiguous outcome (the request may yet be applied).
    count: how many matching requests it affects (None: until cleared).
    exact: match ``path`` exactly (trailing slash ignored) rather than as a prefix, e.g. so that a fault on
    ``/sales/v2/deliveries/retailer`` does not also meet ``/sales/v2/deliveries/retailer/depart``.
    """
    kind: str
    method: Optional[str] = None
    path: Optional[str] = None
    count: Optional[int] = None
    status: int = 503
    body: str = "html"
    retry_after: Optional[str] = None
    seconds: float = 0.0
    exact: bool = False
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method.upper() != method:
            return False
        if self.path is not None:
            mine, theirs = self.path.rstrip("/").lower(), path.rstrip("/").lower()
            if (theirs != mine) if self.exact else not theirs.startswith(mine):
                return False
        return self.count is None or self.count > 0


@dataclass
class Request:
    """One request as this server received it."""
    at: float
    method: str
    path: str  # percent-decoded, as routed
    raw_target: str  # the request target exactly as sent
    query: dict[str, list[str]]
    raw_query: str
    headers: dict[str, str]
    body: bytes
    json: Any
    auth_ok: bool
    license: Optional[str]
    status: Optional[int] = None  # None: dropped without an answer
    fault: Optional[str] = None
    applied: bool = False  # a write that changed Metrc's state
    answer_error: Optional[str] = None  # the answer could not be written (the client had gone)


@dataclass
class Facility:
    license: str
    name: str
    timezone: str
    sells: bool = True


# --------------------------------------------------------------------------------------------------

class IndependentMetrc:
    """A Metrc v2 subset: the state, the switches, and an HTTP server on 127.0.0.1."""

    def __init__(self, *, license: str = LICENSE, vendor_key: str = VENDOR_KEY, user_key: str = USER_KEY,
                 timezone: str = "America/Denver", filler_packages: int = 20) -> None:
        self.license = license
        self.vendor_key = vendor_key
        self.user_key = user_key
        self.timezone = timezone
        self.tz = zoneinfo.ZoneInfo(timezone)
        self._lock = threading.RLock()

        # ---- switches (flip them under no lock: plain attribute writes) ----
        #: "pascal" (Metrc's spelling) or "camel" (the community spec's): casing of every JSON answer.
        self.casing = "pascal"
        #: "Z" (the spec's yyyy-mm-ddThh:mm:ssZ) or "offset" (+00:00) for UTC timestamps in answers.
        self.timestamp_style = "Z"
        #: Retry-After sent with the rate limiter's own 429s (None: no header). README: **unsure**.
        self.rate_limit_retry_after: Optional[str] = "1"
        #: GET limits per facility and per integrator key (README, 2021 bulletin).
        self.get_rate_per_facility = 50
        self.get_rate_per_integrator = 150
        self.max_concurrent_gets_per_facility = 10
        #: objects per write; more → 413 (field guide; README: **unsure**).
        self.object_limit = 10
        #: the external-number lookup for a number not on the license: "404" (expected), "401" (**seen**),
        #: or "empty" (200 with an empty envelope, as a list endpoint would).
        self.external_unknown = "404"
        #: the external-number lookup's success shape: "envelope" (the spec's SaleReceiptMetrcWrapper),
        #: "object" (one SaleReceipt) or "array".
        self.external_shape = "envelope"
        #: GET /sales/v2/customertypes: "envelope" (spec: StringMetrcWrapper) or "array".
        self.customer_types_shape = "envelope"
        #: GET /patients/v2/statuses/{n}: "array" (README: one entry per registration) or "object" (spec).
        self.patient_status_shape = "array"
        #: caregiver Patients[]: "strings" (license numbers) or "objects" ({PatientLicenseNumber}).
        self.caregiver_patients_shape = "strings"
        #: a patient or caregiver Metrc does not know: "404" or "empty" (200 [] / 200 {}).
        self.unknown_person = "404"

        #: rows of a 400 as the README shows them ("doc": row/message) or all-PascalCase ("pascal": Row/Message)
        #: (README: "casing has varied by state (**seen**): decode case-insensitively").
        self.error_row_casing = "doc"
        #: close the connection after every answer, without announcing it (an idle timeout on Metrc's side).
        self.close_after_answer = False
        #: GET /patient-checkins/v2 filters: "spec" (only what the spec documents: licenseNumber, dateTimeOffset,
        #: timeOffset, paging; other parameters are ignored, as ASP.NET ignores unknown query parameters) or
        #: "checkin_date" (also honour checkinDateStart/checkinDateEnd, which the spec does not list).
        self.checkin_list_filter = "spec"
        #: GET /sales/v2/receipts/external/{n} when Metrc holds that number more than once (no dedupe: README).
        #: The docs say "Retrieves a Sales Receipt" (one) and do not say which, nor whether archived ones count:
        #: "all" (every receipt with the number, oldest first, archived included), "oldest", "newest",
        #: or "unarchived" (every one not archived; none left → answered as an unknown number).
        self.external_matches = "all"
        #: PUT /sales/v2/receipts and ExternalReceiptNumber: the spec's PutSaleReceiptsRequest has no such
        #: field, so "keep" (the number stays as first posted, whatever the body says; ASP.NET ignores the
        #: unknown property) or "body" (taken from the body when the body gives one, kept otherwise).
        self.edit_external_number = "keep"
        #: DELETE /sales/v2/receipts/{id} of a receipt already archived (undocumented): "400" (a row error)
        #: or "200" (nothing changes, answered as a success).
        self.archive_again = "400"
        #: the body of a successful PUT, finalize, unfinalize or DELETE (README: "200, often with an empty
        #: body"): "empty" or "ids" ({"Ids":[...],"Warnings":null} naming the receipts touched).
        self.write_answer = "empty"
        #: GET /packages/v2/adjustments: the field names of each adjustment, which our spec subset does not give:
        #: "adjustment" (PackageLabel, AdjustmentQuantity, AdjustmentUnitOfMeasureName, AdjustmentReasonName,
        #: AdjustmentNote, AdjustmentDate) or "request" (the names of the POST that recorded it: Label, Quantity,
        #: UnitOfMeasure, AdjustmentReason, ReasonNote, AdjustmentDate).
        self.adjustments_spelling = "adjustment"
        #: POST /packages/v2/adjust AdjustmentDate: "date" (the spec's format: date, yyyy-mm-dd only) or "lenient"
        #: (also a local date and time without zone, as ASP.NET would bind it to a DateTime).
        self.adjust_date_format = "date"
        #: Transactions[] of a receipt as GET /sales/v2/receipts/active|inactive|{id}|external answer them. The spec's
        #: SaleReceipt gives SaleReceiptTransaction (the POST's own names: PackageLabel, Quantity, UnitOfMeasure,
        #: TotalAmount, with whatever else was posted): "receipt"; its SaleTransaction (as deliveries give their
        #: lines: PackageId, PackageLabel, ProductName, ProductCategoryName, QuantitySold, UnitOfMeasureName,
        #: TotalPrice, ...; no taxes) is the other reading: "sale_transaction". No primary source says which
        #: Metrc sends for receipts.
        self.receipt_lines_spelling = "receipt"
        #: Transactions[] of a sales delivery (POST/PUT /sales/v2/deliveries): the spec types them SaleTransaction
        #: (QuantitySold, UnitOfMeasureName, TotalPrice) while receipt lines say Quantity, UnitOfMeasure, TotalAmount.
        #: Either spelling is read; when a line carries both, "spec" reads the SaleTransaction names, "receipt" the
        #: receipt names (the other spelling only fills what is missing). Trip sales (SalesDeliveryTransaction) read
        #: the receipt names first whatever this says.
        self.delivery_lines_read = "spec"
        #: GET /sales/v2/deliveries/retailer/active|inactive without lastModifiedStart/End: the field guide says
        #: "optionally filtered by last modified date range" ("optional": every trip listed), the spec marks both
        #: parameters required ("required": 400 without them).
        self.retailer_list_window = "optional"
        #: the most GETs of one facility seen in flight at once
        self.max_gets_in_flight = 0

        # ---- state ----
        self._faults: list[Fault] = []
        self._requests: list[Request] = []
        self._ids = itertools.count(5_000_001)
        self._package_ids = itertools.count(880_001)
        self._checkin_ids = itertools.count(31_001)
        self._adjustment_ids = itertools.count(61_001)
        self._facilities: dict[str, Facility] = {
            license: Facility(license, "Independent Test Dispensary", timezone, sells=True),
            SECOND_LICENSE: Facility(SECOND_LICENSE, "Independent Test Cultivation", timezone, sells=False),
            FOREIGN_LICENSE: Facility(FOREIGN_LICENSE, "Someone Else's Dispensary", timezone, sells=True),
        }
        #: licenses each (vendor key, user key) pair may act for
        self._access: dict[tuple[str, str], set[str]] = {(vendor_key, user_key): {license, SECOND_LICENSE}}
        self._packages: dict[str, dict[str, Any]] = {}  # label → package (internal PascalCase record)
        self._receipts: dict[int, dict[str, Any]] = {}  # id → receipt
        self._checkins: dict[int, dict[str, Any]] = {}
        self._checkin_locations = {license: [{"Id": 7001, "Name": "Front Counter"}, {"Id": 7002, "Name": "Drive-Up"}]}
        self._patients: dict[str, list[dict[str, Any]]] = {}
        #: GET /packages/v2/adjust/reasons (spec: PackageAdjustReason); a facility's list is Metrc's to set
        self._adjust_reasons: list[dict[str, Any]] = [
            self._reason("Waste", False), self._reason("Damage", True), self._reason("Theft", True),
            self._reason("Entry Error", False), self._reason("Drying", False)]
        self._adjustments: dict[int, dict[str, Any]] = {}  # id → adjustment (internal record)
        self._caregivers: dict[str, dict[str, Any]] = {}
        self._facility_overrides: dict[str, Any] = {}
        self._deliveries: dict[int, dict[str, Any]] = {}  # id → sales delivery (internal record)
        self._trips: dict[int, dict[str, Any]] = {}  # id → retailer delivery (internal record)
        self._delivery_ids = itertools.count(7_100_001)
        self._trip_ids = itertools.count(8_200_001)
        self._destination_ids = itertools.count(9_300_001)
        #: GET /sales/v2/deliveries/returnreasons (spec: DeliveryReturnReason); docs/deliveries.md names these four
        self._return_reasons: list[dict[str, Any]] = [self._reason(name, note) for name, note in DELIVERY_RETURN_REASONS]
        self._get_times: dict[str, list[float]] = {}
        self._gets_in_flight: dict[str, int] = {}
        self._seed(filler_packages)

        self._server: Optional[http.server.ThreadingHTTPServer] = None
        self._thread: Optional[threading.Thread] = None

    # ------------------------------------------------------------------------------------ seeding

    def _item(self, name: str, category: str, unit: str, *, unit_weight: Optional[str] = None,
              thc_content: Optional[str] = None) -> dict[str, Any]:
        kind = UNITS[unit][0]
        return {
            "Id": next(self._package_ids) + 100_000, "Name": name, "ProductCategoryName": category,
            "ProductCategoryType": "Buds" if category == "Buds" else "Other", "QuantityType": kind,
            "DefaultLabTestingState": "NotSubmitted", "UnitOfMeasureName": unit, "ApprovalStatus": "Approved",
            "StrainName": "Independent Haze" if category in ("Buds", "Pre-Roll Flower") else None,
            "UnitThcContent": Decimal(thc_content) if thc_content else None,
            "UnitThcContentUnitOfMeasureName": "Milligrams" if thc_content else None,
            "UnitWeight": Decimal(unit_weight) if unit_weight else None,
            "UnitWeightUnitOfMeasureName": "Grams" if unit_weight else None,
        }

    def _add_package(self, label: str, item: dict[str, Any], quantity: str, unit: str, *, on_hold: bool = False,
                     lab: str = "TestPassed", license: Optional[str] = None, hours_ago: float = 30) -> None:
        modified = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=hours_ago)
        self._packages[label] = {
            "Id": next(self._package_ids), "Label": label, "PackageType": "Product",
            "License": license or self.license,  # internal: the facility holding it (not sent)
            "SourceHarvestNames": "Harvest 42", "LocationId": 501, "LocationName": "Vault",
            "LocationTypeName": "Default", "Quantity": Decimal(quantity), "UnitOfMeasureName": unit,
            "UnitOfMeasureAbbreviation": UNITS[unit][1], "PatientLicenseNumber": None, "Note": None,
            "PackagedDate": (modified - dt.timedelta(days=10)).date().isoformat(),
            "InitialLabTestingState": "NotSubmitted", "LabTestingState": lab,
            "LabTestingStateDate": (modified - dt.timedelta(days=5)).date().isoformat(),
            "IsProductionBatch": False, "ProductionBatchNumber": None, "IsTradeSample": False,
            "IsDonation": False, "IsTestingSample": False, "ProductRequiresRemediation": False,
            "ContainsRemediatedProduct": False, "ReceivedDateTime": utc_stamp(modified - dt.timedelta(days=3)),
            "ReceivedFromManifestNumber": "0000012345", "IsOnHold": on_hold, "ArchivedDate": None,
            "FinishedDate": None, "LastModified": modified, "Item": item, "IsOnTrip": False,
            "IsOnRetailerDelivery": False, "IsFinished": False,
            "ExpirationDate": None, "SellByDate": None, "UseByDate": None,
        }

    def _seed(self, fillers: int) -> None:
        buds = self._item("Independent Haze Buds", "Buds", "Grams")
        preroll = self._item("Independent Pre-Roll 1g", "Pre-Roll Flower", "Each", unit_weight="1")
        gummy = self._item("Independent Gummies 100mg", "Edible", "Each", unit_weight="30", thc_content="100")
        wax = self._item("Independent Wax", "Concentrate", "Grams")
        held = self._item("Held Kush Buds", "Buds", "Grams")
        failed = self._item("Failed Lab Buds", "Buds", "Grams")
        self.FLOWER = "1A4FF0300000042000000001"
        self.PREROLL = "1A4FF0300000042000000002"
        self.EDIBLE = "1A4FF0300000042000000003"
        self.CONCENTRATE = "1A4FF0300000042000000004"
        self.ON_HOLD = "1A4FF0300000042000000005"
        self.LAB_FAILED = "1A4FF0300000042000000006"
        self._add_package(self.FLOWER, buds, "250.5", "Grams")
        self._add_package(self.PREROLL, preroll, "40", "Each")
        self._add_package(self.EDIBLE, gummy, "25", "Each")
        self._add_package(self.CONCENTRATE, wax, "12.75", "Grams")
        self._add_package(self.ON_HOLD, held, "50", "Grams", on_hold=True)
        self._add_package(self.LAB_FAILED, failed, "30", "Grams", lab="TestFailed")
        self.FILLERS = []
        for n in range(fillers):  # enough for more than one page of 20
            label = f"1A4FF03000000420000001{n:02d}"
            self.FILLERS.append(label)
            self._add_package(label, self._item(f"Filler Buds {n:02d}", "Buds", "Grams"), f"{10 + n}.25", "Grams",
                              hours_ago=20 + n)
        # a package of the cultivation facility: never listed for the dispensary
        self._add_package("1A4FF0300000043000000001", self._item("Grow Room Buds", "Buds", "Grams"), "999",
                          "Grams", license=SECOND_LICENSE)
        today = dt.datetime.now(self.tz).date()
        self._patients = {
            "PT-INDEP-0001": [self._patient("PT-INDEP-0001", today, active=True, flower="2.5", purchased="0.5")],
            "PT-INDEP-0002": [self._patient("PT-INDEP-0002", today, active=False, flower="2.5", purchased="0")],
            "PT-INDEP-0003": [self._patient("PT-INDEP-0003", today, active=True, flower="1", purchased="0")],
        }
        self._caregivers = {
            "CG-INDEP-0001": {"Active": True, "CaregiverLicenseNumber": "CG-INDEP-0001", "Patients": ["PT-INDEP-0001"]},
        }

    @staticmethod
    def _reason(name: str, requires_note: bool) -> dict[str, Any]:
        return {"Name": name, "RequiresNote": requires_note, "RequiresWasteWeight": False,
                "RequiresImmatureWasteWeight": False, "RequiresMatureWasteWeight": False}

    def _patient(self, number: str, today: dt.date, *, active: bool, flower: str, purchased: str) -> dict[str, Any]:
        allowed, bought = Decimal(flower), Decimal(purchased)
        record: dict[str, Any] = {
            "Active": active, "PatientLicenseNumber": number, "RegistrationNumber": "REG-" + number[-4:],
            "PatientLicenseExpirationDate": (today + dt.timedelta(days=200)).isoformat(),
            "PatientRegistrationStartDate": (today - dt.timedelta(days=100)).isoformat(),
            "IdentificationMethod": "StateId", "PurchaseAmountDays": Decimal(30),
        }
        for bucket, a, p in (("Flower", allowed, bought), ("Thc", Decimal("0.35"), Decimal(0)),
                             ("Concentrate", Decimal("0.5"), Decimal(0)), ("Infused", Decimal("1"), Decimal(0))):
            record[f"{bucket}OuncesAllowed"] = a
            record[f"{bucket}OuncesPurchased"] = p
            record[f"{bucket}OuncesAvailable"] = a - p
        return record

    # ------------------------------------------------------------------------------------ lifecycle

    def start(self) -> "IndependentMetrc":
        handler = _make_handler(self)
        self._server = _QuietServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="independent-metrc", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    @property
    def port(self) -> int:
        assert self._server is not None, "not started"
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # ------------------------------------------------------------------------------------ switches

    def add_fault(self, kind: str, *, method: Optional[str] = None, path: Optional[str] = None,
                  count: Optional[int] = None, status: int = 503, body: str = "html",
                  retry_after: Optional[str] = None, seconds: float = 0.0, exact: bool = False) -> Fault:
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}")
        fault = Fault(kind=kind, method=method, path=path, count=count, status=status, body=body,
                      retry_after=retry_after, seconds=seconds, exact=exact)
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def remove_fault(self, fault: Fault) -> None:
        with self._lock:
            if fault in self._faults:
                self._faults.remove(fault)

    def _take_faults(self, method: str, path: str) -> list[Fault]:
        """The faults this request meets: every matching latency, then at most one other."""
        taken: list[Fault] = []
        with self._lock:
            action_taken = False
            for fault in list(self._faults):
                if not fault.matches(method, path):
                    continue
                if fault.kind != "latency":
                    if action_taken:
                        continue
                    action_taken = True
                fault.hits += 1
                if fault.count is not None:
                    fault.count -= 1
                    if fault.count <= 0:
                        self._faults.remove(fault)
                taken.append(copy.copy(fault))
        return taken

    # ------------------------------------------------------------------------------------ inspection

    def requests(self, method: Optional[str] = None, path: Optional[str] = None) -> list[Request]:
        """Requests received, oldest first; ``path`` matches the percent-decoded path exactly
        (trailing slash ignored) or as a prefix when it ends with ``*``."""
        with self._lock:
            found = list(self._requests)
        def path_ok(r: Request) -> bool:
            if path is None:
                return True
            if path.endswith("*"):
                return r.path.lower().startswith(path[:-1].lower())
            return r.path.rstrip("/").lower() == path.rstrip("/").lower()
        return [r for r in found if (method is None or r.method == method) and path_ok(r)]

    def receipt_posts(self) -> list[Request]:
        return self.requests("POST", "/sales/v2/receipts")

    def receipts(self, *, include_archived: bool = True) -> list[dict[str, Any]]:
        with self._lock:
            found = [copy.deepcopy(r) for r in self._receipts.values()]
        return [r for r in found if include_archived or r["ArchivedDate"] is None]

    def receipts_by_external(self, number: str) -> list[dict[str, Any]]:
        return [r for r in self.receipts() if r.get("ExternalReceiptNumber") == number]

    def receipt(self, receipt_id: int) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self._receipts[receipt_id])

    def plant_receipt(self, item: dict[str, Any], *, license: Optional[str] = None,
                      recorded_by: str = "Metrc Website User") -> int:
        """A receipt recorded in Metrc without going through this server's HTTP front (entered on Metrc's
        website, or posted by another client): ``item`` as a POST /sales/v2/receipts item (PascalCase),
        validated and applied exactly as a POST would (the packages lose its quantities). Returns its Id;
        a refusal raises ValueError with Metrc's rows."""
        lic = license or self.license
        with self._lock:
            refusal, parsed = self._validate_receipts(lic, [item], None, editing=False)
            if refusal:
                raise ValueError(f"Metrc would refuse this receipt: {refusal[1]}")
            now = dt.datetime.now(dt.timezone.utc)
            receipt_id = next(self._ids)
            record = self._receipt_record(lic, receipt_id, parsed[0], now)
            record["RecordedByUserName"] = recorded_by
            self._receipts[receipt_id] = record
            self._apply_lines(parsed[0]["lines"], +1, now)
            return receipt_id

    def duplicate_receipt(self, receipt_id: int, **changes: Any) -> int:
        """A second receipt with the content of ``receipt_id`` (same ExternalReceiptNumber, same lines, same
        SalesDateTime unless ``changes`` say otherwise), as a second POST of the same sale would leave it;
        stock is decremented again. Returns the new Id."""
        with self._lock:
            old = copy.deepcopy(self._receipts[receipt_id])
        item = self._item_of(old)
        item.update(changes)
        return self.plant_receipt(item, license=old["_License"], recorded_by=old["RecordedByUserName"])

    @staticmethod
    def _item_of(record: dict[str, Any]) -> dict[str, Any]:
        """A held receipt as a POST /sales/v2/receipts item would give it (PascalCase, no Id)."""
        item = {key: record[key] for key in ("SalesDateTime", "SalesCustomerType", "PatientLicenseNumber",
                                             "CaregiverLicenseNumber", "IdentificationMethod",
                                             "PatientRegistrationLocationId", "ExternalReceiptNumber")
                if record.get(key) is not None}
        item["Transactions"] = [{k: v for k, v in line.items() if not k.startswith("_")}
                                for line in record["Transactions"]]
        return item

    def website_edit(self, receipt_id: int, *, recorded_by: str = "Metrc Website User", **changes: Any) -> None:
        """An edit of a receipt made on Metrc's website (README: "Edits made on the Metrc website behind a
        point-of-sale's back are a known cause of failed reports"): ``changes`` replace fields of the receipt's
        content as a PUT /sales/v2/receipts item gives them, e.g. ``Transactions=[...]`` (lines as posted) or
        ``SalesDateTime="2026-12-04T15:00:00.000"`` (local, no zone: the receipt moves to another day). Validated
        and applied exactly as a PUT (a finalized or archived receipt is refused with ValueError; the difference
        in quantities goes back on the packages; LastModified moves, so a LastModified window finds it), but no
        request is recorded. The ExternalReceiptNumber stays as it is."""
        with self._lock:
            old = self._receipts[receipt_id]
            item = self._item_of(old)
            item.update(changes)
            item["Id"] = receipt_id
            refusal, parsed = self._validate_receipts(old["_License"], [item], None, editing=True)
            if refusal:
                raise ValueError(f"Metrc would refuse this edit: {refusal[1]}")
            now = dt.datetime.now(dt.timezone.utc)
            self._apply_lines(old["Transactions"], -1, now)
            record = self._receipt_record(old["_License"], receipt_id, parsed[0], now, old=old)
            record["ExternalReceiptNumber"] = old["ExternalReceiptNumber"]
            record["RecordedByUserName"] = recorded_by
            self._receipts[receipt_id] = record
            self._apply_lines(parsed[0]["lines"], +1, now)

    def website_archive(self, receipt_id: int) -> None:
        """A receipt archived on Metrc's website (a full return there): as DELETE /sales/v2/receipts/{id} would,
        quantities back on the packages, ArchivedDate and LastModified set; no request recorded. A finalized or
        already archived receipt is refused with ValueError."""
        with self._lock:
            receipt = self._receipts[receipt_id]
            if receipt["ArchivedDate"] is not None:
                raise ValueError(f"Sales Receipt {receipt_id} is already archived.")
            status, value, _, _ = self._archive(receipt)
            if status != 200:
                raise ValueError(f"Metrc would refuse this archive: {value}")

    def lose_receipt(self, receipt_id: int, *, restock: bool = False) -> dict[str, Any]:
        """The receipt vanishes from Metrc as if Metrc had lost it: no longer listed (active, inactive, by any
        window), looked up by its Id or by its external number; no request recorded. The packages keep what
        the receipt took unless ``restock``. Returns the record that was lost."""
        with self._lock:
            receipt = self._receipts.pop(receipt_id)
            if restock and receipt["ArchivedDate"] is None:
                self._apply_lines(receipt["Transactions"], -1, dt.datetime.now(dt.timezone.utc))
            return copy.deepcopy(receipt)

    def package(self, label: str) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self._packages[label])

    def packages(self, license: Optional[str] = None) -> list[dict[str, Any]]:
        with self._lock:
            return [copy.deepcopy(p) for p in self._packages.values() if p["License"] == (license or self.license)]

    def set_package(self, label: str, **changes: Any) -> None:
        """An edit made on Metrc's website behind the point of sale's back (README: a known cause of
        failed reports). E.g. ``IsOnHold=True`` or ``Quantity=Decimal("1")``."""
        with self._lock:
            package = self._packages[label]
            for key, value in changes.items():
                package[key] = Decimal(value) if key == "Quantity" else value
            package["LastModified"] = dt.datetime.now(dt.timezone.utc)

    def set_facility_type(self, **flags: Any) -> None:
        """Override FacilityType flags of the dispensary (e.g. ``CanSellToPatients=False``); Metrc then
        also refuses such receipts."""
        with self._lock:
            self._facility_overrides.update(flags)

    def revoke_access(self) -> None:
        """The user key loses its permissions (every call then answers 401)."""
        with self._lock:
            self._revoked = dict(self._access)
            self._access.clear()

    def restore_access(self) -> None:
        with self._lock:
            self._access.update(getattr(self, "_revoked", {}))

    def seed_patients(self, count: int) -> list[str]:
        """More active patients (PT-MANY-0000...)."""
        today = dt.datetime.now(self.tz).date()
        numbers = [f"PT-MANY-{n:04d}" for n in range(count)]
        with self._lock:
            for number in numbers:
                self._patients[number] = [self._patient(number, today, active=True, flower="2", purchased="0")]
        return numbers

    def set_patient_registrations(self, number: str, registrations: list[dict[str, Any]]) -> None:
        """A patient's status entries, one per registration (README), each given as overrides of an active,
        current registration, e.g. ``[{"Active": False, "PatientLicenseExpirationDate": "2025-01-31"}, {}]``."""
        today = dt.datetime.now(self.tz).date()
        with self._lock:
            entries = []
            for overrides in registrations:
                entry = self._patient(number, today, active=True, flower="2", purchased="0")
                entry.update({k: (Decimal(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v)
                              for k, v in overrides.items()})
                entries.append(entry)
            self._patients[number] = entries

    def seed_checkins(self, count: int, *, days_ago: int = 3, patient: Optional[str] = None) -> None:
        """Check-ins recorded earlier (by other patients unless ``patient``), e.g. so that a listing needs
        more than one page."""
        day = (dt.datetime.now(self.tz).date() - dt.timedelta(days=days_ago)).isoformat()
        with self._lock:
            for n in range(count):
                cid = next(self._checkin_ids)
                self._checkins[cid] = {
                    "Id": cid, "PatientLicenseNumber": patient or f"PT-EARLIER-{n:04d}", "CheckInLocationId": 7001,
                    "CheckInLocationName": "Front Counter", "RegistrationStartDate": None,
                    "RegistrationExpiryDate": None, "CheckInDate": day, "_License": self.license,
                }

    def checkins(self) -> list[dict[str, Any]]:
        with self._lock:
            return [copy.deepcopy(c) for c in self._checkins.values()]

    def set_receipt(self, receipt_id: int, **changes: Any) -> None:
        """An edit of a receipt made on Metrc's website, e.g. ``IsFinal=True`` (finalized there, not through
        PUT /sales/v2/receipts/finalize): no request is recorded, only the receipt changes."""
        with self._lock:
            receipt = self._receipts[receipt_id]
            receipt.update(changes)
            receipt["LastModified"] = dt.datetime.now(dt.timezone.utc)

    def adjust_reasons(self) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._adjust_reasons)

    def set_adjust_reasons(self, reasons: list[tuple[str, bool]]) -> None:
        """The facility's adjustment reasons as Metrc lists them: (Name, RequiresNote) pairs."""
        with self._lock:
            self._adjust_reasons = [self._reason(name, note) for name, note in reasons]

    def adjustments(self) -> list[dict[str, Any]]:
        """Every package adjustment Metrc holds, oldest first (internal record: PackageLabel, Quantity and
        UnitOfMeasure as posted, PackageQuantity in the package's unit, AdjustmentReason, ReasonNote,
        AdjustmentDate, RecordedDateTime, License)."""
        with self._lock:
            return [{k.lstrip("_"): copy.deepcopy(v) for k, v in a.items()}
                    for a in sorted(self._adjustments.values(), key=lambda a: a["Id"])]

    def adjust_posts(self) -> list[Request]:
        return self.requests("POST", "/packages/v2/adjust")

    def plant_adjustment(self, item: dict[str, Any], *, license: Optional[str] = None) -> int:
        """An adjustment recorded without going through this server's HTTP front (Metrc's website, another
        client): ``item`` as a POST /packages/v2/adjust item, validated and applied as a POST would. Returns
        its Id; a refusal raises ValueError with Metrc's rows."""
        lic = license or self.license
        with self._lock:
            refusal, parsed = self._validate_adjustments(lic, [item], None)
            if refusal:
                raise ValueError(f"Metrc would refuse this adjustment: {refusal[1]}")
            return self._apply_adjustments(lic, parsed)[0]

    # ------------------------------------------------------------------------------------ answers

    def _out(self, value: Any) -> Any:
        """An internal record as Metrc writes it: datetimes as stamps, internal keys dropped."""
        if isinstance(value, dict):
            return {k: self._out(v) for k, v in value.items() if not k.startswith("_")}
        if isinstance(value, list):
            return [self._out(v) for v in value]
        if isinstance(value, dt.datetime):
            return utc_stamp(value, self.timestamp_style)
        return value

    def _envelope(self, records: list[Any], page_number: Optional[int], page_size: Optional[int]) -> dict[str, Any]:
        total = len(records)
        if page_size is None:  # "Pagination is currently disabled by default"
            page, size, data = 1, total, records
            pages = 1
        else:
            page = page_number or 1
            size = page_size
            data = records[(page - 1) * size: page * size]
            pages = (total + size - 1) // size if size else 0
        return {"Data": data, "Total": total, "TotalRecords": total, "PageSize": size, "RecordsOnPage": len(data),
                "Page": page, "CurrentPage": page, "TotalPages": pages}

    # ------------------------------------------------------------------------------------ the API

    def handle(self, method: str, path: str, query: dict[str, list[str]], body: Any, body_error: Optional[str],
               auth: Optional[tuple[str, str]]) -> tuple[int, Any, dict[str, str], bool]:
        """(status, JSON value or raw str/bytes or None, extra headers, applied)."""
        q = {k.lower(): v[-1] for k, v in query.items()}
        lic = q.get("licensenumber")
        # ---- authentication: HTTP Basic, vendor key : user key (doc)
        if auth is None or auth not in self._access:
            return 401, None, {}, False
        accessible = self._access[auth]
        parts = [p for p in path.split("/") if p != ""]
        lower = [p.lower() for p in parts]

        def need_license() -> Optional[tuple[int, Any, dict[str, str], bool]]:
            if not lic:
                return 400, {"Message": "No licenseNumber was specified."}, {}, False
            if lic not in accessible:
                return 401, None, {}, False
            return None

        def optional_license() -> Optional[tuple[int, Any, dict[str, str], bool]]:
            if lic is not None and lic not in accessible:
                return 401, None, {}, False
            return None

        def paging() -> tuple[Optional[int], Optional[int], Optional[tuple[int, Any, dict[str, str], bool]]]:
            number, size = q.get("pagenumber"), q.get("pagesize")
            try:
                number_i = int(number) if number not in (None, "") else None
                size_i = int(size) if size not in (None, "") else None
            except ValueError:
                return None, None, (400, {"Message": "pageNumber and pageSize must be whole numbers."}, {}, False)
            if size_i is not None and (size_i < 1 or size_i > 20):
                return None, None, (400, {"Message": "The page size must be between 1 and 20."}, {}, False)
            if number_i is not None and number_i < 1:
                return None, None, (400, {"Message": "The page number must be 1 or greater."}, {}, False)
            if number_i is not None and size_i is None:
                size_i = 20
            return number_i, size_i, None

        def window(start_key: str, end_key: str) -> tuple[Optional[dt.datetime], Optional[dt.datetime], Optional[tuple]]:
            raw_start, raw_end = q.get(start_key), q.get(end_key)
            if raw_start is None and raw_end is None:
                return None, None, None
            start = parse_filter_instant(raw_start) if raw_start is not None else None
            end = parse_filter_instant(raw_end) if raw_end is not None else None
            if (raw_start is not None and start is None) or (raw_end is not None and end is None):
                return None, None, (400, {"Message": f"{start_key}/{end_key}: not an ISO 8601 date and time with a zone."}, {}, False)
            if start is None or end is None:
                return None, None, (400, {"Message": f"Both {start_key} and {end_key} must be specified."}, {}, False)
            if end < start:
                return None, None, (400, {"Message": f"{end_key} is before {start_key}."}, {}, False)
            if end - start > dt.timedelta(hours=24):
                return None, None, (400, {"Message": "The date range must not exceed 24 hours."}, {}, False)
            return start, end, None

        with self._lock:
            # ---- facilities (no licenseNumber)
            if lower[:2] == ["facilities", "v2"] and len(parts) == 2:
                if method != "GET":
                    return 405, None, {"Allow": "GET"}, False
                return 200, [self._facility_json(self._facilities[l]) for l in sorted(accessible)], {}, False

            if lower == ["sales", "v2", "customertypes"]:
                if method != "GET":
                    return 405, None, {"Allow": "GET"}, False
                types = list(CUSTOMER_TYPES)
                if self.customer_types_shape == "array":
                    return 200, types, {}, False
                return 200, self._envelope(types, None, None), {}, False

            if lower[:2] == ["unitsofmeasure", "v2"] and len(parts) == 3 and lower[2] in ("active", "inactive"):
                if method != "GET":
                    return 405, None, {"Allow": "GET"}, False
                units = [] if lower[2] == "inactive" else [
                    {"QuantityType": kind, "Name": name, "Abbreviation": abbr} for name, (kind, abbr, _) in UNITS.items()]
                return 200, self._envelope(units, None, None), {}, False

            # ---- package adjustments
            if lower == ["packages", "v2", "adjust", "reasons"]:
                if method != "GET":
                    return 405, None, {"Allow": "GET"}, False
                if (bad := need_license()):
                    return bad
                number, size, bad = paging()
                if bad:
                    return bad
                return 200, self._envelope(copy.deepcopy(self._adjust_reasons), number, size), {}, False
            if lower == ["packages", "v2", "adjust"]:
                # PUT (the spec: "set the final quantity for a package") is not part of this Metrc
                if method != "POST":
                    return 405, None, {"Allow": "POST"}, False
                if (bad := need_license()):
                    return bad
                return self._post_adjust(lic, body, body_error)
            if lower == ["packages", "v2", "adjustments"]:
                if method != "GET":
                    return 405, None, {"Allow": "GET"}, False
                if (bad := need_license()):
                    return bad
                number, size, bad = paging()
                if bad:
                    return bad
                found = [self._adjustment_public(a) for a in sorted(self._adjustments.values(), key=lambda a: a["Id"])
                         if a["_License"] == lic]
                return 200, self._envelope(found, number, size), {}, False

            # ---- packages
            if lower[:2] == ["packages", "v2"] and len(parts) == 3:
                if method != "GET":
                    return 405, None, {"Allow": "GET"}, False
                which = lower[2]
                if which in ("active", "onhold", "inactive"):
                    if (bad := need_license()):
                        return bad
                    number, size, bad = paging()
                    if bad:
                        return bad
                    start, end, bad = window("lastmodifiedstart", "lastmodifiedend")
                    if bad:
                        return bad
                    found = []
                    for p in sorted(self._packages.values(), key=lambda p: p["Id"]):
                        if p["License"] != lic:
                            continue
                        inactive = p["IsFinished"] or p["ArchivedDate"] is not None
                        if which == "active" and inactive:
                            continue
                        if which == "inactive" and not inactive:
                            continue
                        if which == "onhold" and (inactive or not p["IsOnHold"]):
                            continue
                        if start is not None and not (start <= p["LastModified"] <= end):
                            continue
                        found.append(self._out(self._package_public(p)))
                    return 200, self._envelope(found, number, size), {}, False
                if which == "types":
                    return 200, ["Product", "ImmaturePlant", "VegetativePlant", "PlantWaste", "HarvestWaste"], {}, False
                # /packages/v2/{id} or /packages/v2/{label}
                if (bad := optional_license()):
                    return bad
                key = parts[2]
                package = None
                if key.isdigit():
                    package = next((p for p in self._packages.values() if p["Id"] == int(key)), None)
                if package is None:
                    package = self._packages.get(key)
                if package is None:
                    return 404, {"Message": "Package not found."}, {}, False
                if package["License"] not in (accessible if lic is None else {lic}):
                    return 401, None, {}, False
                return 200, self._out(self._package_public(package)), {}, False

            # ---- sales receipts
            if lower[:3] == ["sales", "v2", "receipts"]:
                rest = parts[3:]
                rest_l = lower[3:]
                if not rest:
                    if method == "POST":
                        if (bad := need_license()):
                            return bad
                        return self._post_receipts(lic, body, body_error)
                    if method == "PUT":
                        if (bad := need_license()):
                            return bad
                        return self._put_receipts(lic, body, body_error)
                    return 405, None, {"Allow": "POST, PUT"}, False
                if rest_l in (["finalize"], ["unfinalize"]):
                    if method != "PUT":
                        return 405, None, {"Allow": "PUT"}, False
                    if (bad := need_license()):
                        return bad
                    return self._finalize(lic, body, body_error, final=(rest_l[0] == "finalize"))
                if rest_l in (["active"], ["inactive"]):
                    if method != "GET":
                        return 405, None, {"Allow": "GET"}, False
                    if (bad := need_license()):
                        return bad
                    number, size, bad = paging()
                    if bad:
                        return bad
                    has_sales = any(k in q for k in ("salesdatestart", "salesdateend"))
                    has_modified = any(k in q for k in ("lastmodifiedstart", "lastmodifiedend"))
                    if has_sales and has_modified:
                        return 400, {"Message": "Sales date and last modified filters cannot be combined."}, {}, False
                    s_start, s_end, bad = window("salesdatestart", "salesdateend")
                    if bad:
                        return bad
                    m_start, m_end, bad = window("lastmodifiedstart", "lastmodifiedend")
                    if bad:
                        return bad
                    found = []
                    for r in sorted(self._receipts.values(), key=lambda r: r["Id"]):
                        if r["_License"] != lic:
                            continue
                        archived = r["ArchivedDate"] is not None
                        if archived != (rest_l[0] == "inactive"):
                            continue
                        if s_start is not None:
                            sold = dt.datetime.fromisoformat(r["SalesDateTime"]).replace(tzinfo=self.tz)
                            if not (s_start <= sold <= s_end):
                                continue
                        if m_start is not None and not (m_start <= r["LastModified"] <= m_end):
                            continue
                        found.append(self._receipt_public(r))
                    return 200, self._envelope(found, number, size), {}, False
                if len(rest) >= 2 and rest_l[0] == "external":
                    if method != "GET":
                        return 405, None, {"Allow": "GET"}, False
                    if (bad := optional_license()):
                        return bad
                    number_text = "/".join(rest[1:])  # already percent-decoded
                    licenses = {lic} if lic else accessible
                    matches = [r for r in sorted(self._receipts.values(), key=lambda r: r["Id"])
                               if r.get("ExternalReceiptNumber") == number_text and r["_License"] in licenses]
                    if self.external_matches == "oldest":
                        matches = matches[:1]
                    elif self.external_matches == "newest":
                        matches = matches[-1:]
                    elif self.external_matches == "unarchived":
                        matches = [r for r in matches if r["ArchivedDate"] is None]
                    if not matches:
                        if self.external_unknown == "401":
                            return 401, None, {}, False
                        if self.external_unknown == "empty":
                            return 200, self._envelope([], None, None), {}, False
                        return 404, {"Message": "Sales Receipt not found."}, {}, False
                    public = [self._receipt_public(r) for r in matches]
                    if self.external_shape == "object":
                        return 200, public[-1], {}, False
                    if self.external_shape == "array":
                        return 200, public, {}, False
                    return 200, self._envelope(public, None, None), {}, False
                if len(rest) == 1:
                    if not rest[0].isdigit():
                        return 404, {"Message": "Not found."}, {}, False
                    receipt = self._receipts.get(int(rest[0]))
                    if method == "GET":
                        if (bad := optional_license()):
                            return bad
                        if receipt is None:
                            return 404, {"Message": "Sales Receipt not found."}, {}, False
                        if receipt["_License"] not in ({lic} if lic else accessible):
                            return 401, None, {}, False
                        return 200, self._receipt_public(receipt), {}, False
                    if method == "DELETE":
                        if (bad := need_license()):
                            return bad
                        if receipt is None:
                            return 404, {"Message": "Sales Receipt not found."}, {}, False
                        if receipt["_License"] != lic:
                            return 401, None, {}, False
                        return self._archive(receipt)
                    return 405, None, {"Allow": "GET, DELETE"}, False

            # ---- sales deliveries and retailer deliveries (trips)
            if lower[:3] == ["sales", "v2", "deliveries"]:
                return self._route_deliveries(method, parts[3:], lower[3:], q, body, body_error, lic, accessible,
                                              need_license, optional_license, paging, window)

            # ---- patients and caregivers
            if lower[:3] == ["patients", "v2", "statuses"] and len(parts) == 4:
                if method != "GET":
                    return 405, None, {"Allow": "GET"}, False
                if (bad := need_license()):
                    return bad
                number = parts[3]
                entries = next((v for k, v in self._patients.items() if k.lower() == number.lower()), None)
                if not entries:
                    if self.unknown_person == "empty":
                        return 200, ([] if self.patient_status_shape == "array" else {}), {}, False
                    return 404, {"Message": "Patient not found."}, {}, False
                if self.patient_status_shape == "object":
                    return 200, copy.deepcopy(entries[0]), {}, False
                return 200, copy.deepcopy(entries), {}, False
            if lower[:3] == ["caregivers", "v2", "status"] and len(parts) == 4:
                if method != "GET":
                    return 405, None, {"Allow": "GET"}, False
                if (bad := need_license()):
                    return bad
                number = parts[3]
                cg = next((v for k, v in self._caregivers.items() if k.lower() == number.lower()), None)
                if cg is None:
                    if self.unknown_person == "empty":
                        return 200, {}, {}, False
                    return 404, {"Message": "Caregiver not found."}, {}, False
                cg = copy.deepcopy(cg)
                if self.caregiver_patients_shape == "objects":
                    cg["Patients"] = [{"PatientLicenseNumber": p} for p in cg["Patients"]]
                return 200, cg, {}, False

            # ---- patient check-ins
            if lower[:2] == ["patient-checkins", "v2"]:
                rest_l = lower[2:]
                if rest_l == ["locations"]:
                    if method != "GET":
                        return 405, None, {"Allow": "GET"}, False
                    # the spec gives no licenseNumber here; take one if given
                    if (bad := optional_license()):
                        return bad
                    return 200, self._envelope(copy.deepcopy(self._checkin_locations.get(lic or self.license, [])),
                                               None, None), {}, False
                if not rest_l:
                    if method == "POST":
                        if (bad := need_license()):
                            return bad
                        return self._post_checkins(lic, body, body_error)
                    if method == "GET":
                        if (bad := need_license()):
                            return bad
                        number, size, bad = paging()
                        if bad:
                            return bad
                        found = [self._checkin_public(c) for c in sorted(self._checkins.values(), key=lambda c: c["Id"])
                                 if c["_License"] == lic]
                        if self.checkin_list_filter == "checkin_date":
                            first, last = q.get("checkindatestart"), q.get("checkindateend")
                            if first or last:
                                found = [c for c in found if (not first or c["CheckInDate"] >= first[:10])
                                         and (not last or c["CheckInDate"] <= last[:10])]
                        return 200, self._envelope(found, number, size), {}, False
                    return 405, None, {"Allow": "GET, POST, PUT"}, False

        return 404, {"Message": "No HTTP resource was found that matches the request URI."}, {}, False

    # ---- JSON views

    def _facility_json(self, f: Facility) -> dict[str, Any]:
        medical = f.sells
        # FacilityType, as the spec lists it (PascalCase on the wire). The dispensary delivers (docs/deliveries.md's
        # demo facility): to consumers and patients, address, city, county, state, zip and planned route allowed,
        # recipient name and (for patients) patient number required, no consumer Id required; retailer delivery
        # with a price required and partial packages allowed. set_facility_type changes any of it per test.
        flags = {
            "IsMedical": medical, "IsRetail": f.sells, "IsHemp": False, "IsSalesDeliveryHub": False,
            "RestrictHarvestPlantRestoreTimeHours": None, "TotalMemberPatientsAllowed": None,
            "CanGrowPlants": not f.sells, "CanCreateOpeningBalancePlantBatches": False,
            "CanTagPlantBatches": not f.sells, "CanAssignLocationsToPlantBatches": not f.sells,
            "PlantsRequirePatientAffiliation": False, "PlantBatchesCanContainMotherPlants": False,
            "CanUpdatePlantStrains": False, "CanTrackVegetativePlants": not f.sells,
            "CanCreateImmaturePlantPackagesFromPlants": False, "CanPackageVegetativePlants": False,
            "CanPackageWaste": False, "CanReportHarvestSchedules": False, "CanSubmitHarvestsForTesting": not f.sells,
            "CanRequireHarvestSampleLabTestBatches": False, "CanCreateOpeningBalancePackages": False,
            "CanCreateDerivedPackages": True, "CanAssignLocationsToPackages": True,
            "CanUpdateLocationsOnPackages": True, "PackagesRequirePatientAffiliation": False,
            "CanCreateTradeSamplePackages": False, "CanDonatePackages": False, "CanSubmitPackagesForTesting": True,
            "CanCreateProcessValidationPackages": False, "CanRequirePackageSampleLabTestBatches": False,
            "CanRequestProductRemediation": False, "CanRemediatePackagesWithFailedLabResults": False,
            "CanInfuseProducts": False, "CanDestroyProduct": True, "CanTestPackages": False,
            "CanTransferFromExternalFacilities": False,
            "CanSellToConsumers": f.sells, "CanSellToPatients": f.sells, "CanSellToExternalPatients": f.sells,
            "CanSellToCaregivers": f.sells, "AdvancedSales": False,
            "SalesRequirePatientNumber": f.sells, "SalesRequireExternalPatientNumber": f.sells,
            "SalesRequireExternalPatientIdentificationMethod": False, "SalesRequireCaregiverNumber": f.sells,
            "SalesRequireCaregiverPatientNumber": f.sells, "CanDeliverSalesToConsumers": f.sells,
            "SalesDeliveryRequireConsumerId": False, "CanDeliverSalesToPatients": f.sells,
            "SalesDeliveryRequirePatientNumber": f.sells, "SalesDeliveryRequireRecipientName": f.sells,
            "CanHaveMemberPatients": False, "CanReportPatientCheckIns": f.sells,
            "CanSpecifyPatientSalesLimitExemption": False, "CanReportPatientsAdverseResponses": False,
            "CanReportStrainProperties": False, "CanRecordProcessingJobs": False,
            "CanRecordProductForDestruction": False, "CanClonePlantBatches": False, "TestsRequireLabSample": False,
            "RestrictPlantBatchAdjustmentTimeHours": None, "CanTakePlantBatchesOnTrip": False,
            "CanTakePlantsOnTrip": False, "CanTakeHarvestsOnTrip": False, "CanTakePackagesOnTrip": False,
            "CanSellFromPackagesOnTrip": False, "SalesDeliveryAllowPlannedRoute": f.sells,
            "SalesDeliveryAllowAddress": f.sells, "SalesDeliveryAllowCity": f.sells, "SalesDeliveryAllowState": f.sells,
            "SalesDeliveryAllowCounty": f.sells, "SalesDeliveryAllowZip": f.sells, "RetailerDelivery": f.sells,
            "RetailerDeliveryAllowTradeSamples": False, "RetailerDeliveryAllowDonations": False,
            "RetailerDeliveryRequirePrice": f.sells, "RetailerDeliveryAllowPartialPackages": f.sells,
            "CanCreatePartialPackages": False, "CanAdjustSourcePackagesWithPartials": False,
            "CanReportOperationalExceptions": False, "CanReportAdulteration": False,
            "CanGenerateProductLabel": False, "CanPrintProductLabel": False,
            "CanReceiveAssociateProductLabel": False, "CanViewSourcePackages": False,
            "TaxExemptReportingFeesFacilityType": False, "TaxExemptTagOrdersFacilityType": False,
            "CanDownloadProductLabel": False, "RestrictWholesalePriceEditDays": None,
        }
        if f.license == self.license:
            flags.update(self._facility_overrides)
        return {
            "HireDate": "2024-01-15", "IsOwner": False, "IsManager": True, "Occupations": [],
            "Name": f.name, "Alias": f.name.split()[-1], "DisplayName": f.name,
            "CredentialedDate": "2024-01-10", "SupportActivationDate": None, "SupportExpirationDate": None,
            "SupportLastPaidDate": None, "FacilityType": flags,
            "License": {"Number": f.license, "StartDate": "2024-01-01", "EndDate": "2027-12-31",
                        "LicenseType": "Medical and Adult-Use Retailer" if f.sells else "Cultivator"},
            "IsFinancialContact": False,
        }

    def _package_public(self, p: dict[str, Any]) -> dict[str, Any]:
        public = {k: v for k, v in p.items() if k != "License"}
        public["Item"] = copy.deepcopy(p["Item"])
        return public

    def _receipt_public(self, r: dict[str, Any]) -> dict[str, Any]:
        public = self._out(copy.deepcopy(r))
        if self.receipt_lines_spelling == "sale_transaction":
            public["Transactions"] = [self._sale_transaction(r, line) for line in r["Transactions"]]
        return public

    def _sale_transaction(self, r: dict[str, Any], line: dict[str, Any], state: Optional[str] = None) -> dict[str, Any]:
        """A receipt line spelt as the spec's SaleTransaction (switch ``receipt_lines_spelling``), or a sales
        delivery's line (``state``: its SalesDeliveryState)."""
        package = self._packages.get(line["PackageLabel"]) or {}
        item = package.get("Item") or {}
        unit = line["UnitOfMeasure"]
        return self._out({
            "PackageId": package.get("Id"), "PackageLabel": line["PackageLabel"], "ProductName": item.get("Name"),
            "ProductCategoryName": item.get("ProductCategoryName"), "ItemStrainName": item.get("StrainName"),
            "ItemUnitThcContent": item.get("UnitThcContent"),
            "ItemUnitThcContentUnitOfMeasureName": item.get("UnitThcContentUnitOfMeasureName"),
            "ItemUnitWeight": item.get("UnitWeight"),
            "ItemUnitWeightUnitOfMeasureName": item.get("UnitWeightUnitOfMeasureName"),
            "QuantitySold": line["Quantity"], "UnitOfMeasureName": unit, "UnitOfMeasureAbbreviation": UNITS[unit][1],
            "TotalPrice": line["TotalAmount"], "SalesDeliveryState": state, "ArchivedDate": r["ArchivedDate"],
            "RecordedDateTime": r["RecordedDateTime"], "RecordedByUserName": r["RecordedByUserName"],
            "LastModified": r["LastModified"],
        })

    def _checkin_public(self, c: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in c.items() if not k.startswith("_")}

    def _adjustment_public(self, a: dict[str, Any]) -> dict[str, Any]:
        """One adjustment as GET /packages/v2/adjustments lists it (switch ``adjustments_spelling``)."""
        if self.adjustments_spelling == "request":
            view = {"Id": a["Id"], "Label": a["PackageLabel"], "Quantity": a["Quantity"],
                    "UnitOfMeasure": a["UnitOfMeasure"], "AdjustmentReason": a["AdjustmentReason"],
                    "ReasonNote": a["ReasonNote"], "AdjustmentDate": a["AdjustmentDate"]}
        else:
            view = {"Id": a["Id"], "PackageId": a["PackageId"], "PackageLabel": a["PackageLabel"],
                    "AdjustmentQuantity": a["Quantity"], "AdjustmentUnitOfMeasureName": a["UnitOfMeasure"],
                    "AdjustmentUnitOfMeasureAbbreviation": UNITS[a["UnitOfMeasure"]][1],
                    "AdjustmentReasonName": a["AdjustmentReason"], "AdjustmentNote": a["ReasonNote"],
                    "AdjustmentDate": a["AdjustmentDate"], "AdjustedByUserName": a["RecordedByUserName"]}
        view["RecordedDateTime"] = a["RecordedDateTime"]
        return self._out(view)

    # ---- writes

    def _validate_receipts(self, lic: str, body: Any, body_error: Optional[str], *, editing: bool) \
            -> tuple[Optional[tuple[int, Any, dict[str, str], bool]], list[dict[str, Any]]]:
        """Row errors (whole request refused) or the parsed receipts. Caller holds the lock."""
        if body_error is not None or not isinstance(body, list):
            return (400, [{"row": 0, "message": "The request body must be a JSON array of sales receipts."}], {}, False), []
        if len(body) > self.object_limit:
            return (413, {"Message": f"Request contains {len(body)} objects; the limit is {self.object_limit}."}, {}, False), []
        if not body:
            return (400, [{"row": 0, "message": "No sales receipts were submitted."}], {}, False), []
        facility = self._facilities[lic]
        flags = self._facility_json(facility)["FacilityType"]
        errors: list[dict[str, Any]] = []
        parsed: list[dict[str, Any]] = []
        # quantity each package would lose, in its own unit, over the whole request (net of edits)
        demand: dict[str, Decimal] = {}
        for row, item in enumerate(body):
            def err(message: str) -> None:
                errors.append({"row": row, "message": message})
            if not isinstance(item, dict):
                err("Each sales receipt must be an object.")
                continue
            receipt_id = None
            old = None
            if editing:
                raw_id = field_ci(item, "Id")
                receipt_id = raw_id if isinstance(raw_id, int) and not isinstance(raw_id, bool) else None
                old = self._receipts.get(receipt_id) if receipt_id is not None else None
                if old is None or old["_License"] != lic:
                    err(f"Sales Receipt Id {raw_id} was not found.")
                    continue
                if old["IsFinal"]:
                    err(f"Sales Receipt {receipt_id} is finalized and cannot be edited.")
                    continue
                if old["ArchivedDate"] is not None:
                    err(f"Sales Receipt {receipt_id} is archived and cannot be edited.")
                    continue
                for t in old["Transactions"]:
                    demand[t["PackageLabel"]] = demand.get(t["PackageLabel"], Decimal(0)) - t["_PackageQuantity"]
            when = field_ci(item, "SalesDateTime")
            if not isinstance(when, str) or not when:
                err("SalesDateTime is required.")
            elif _HAS_ZONE.search(when) or not _LOCAL_DT.match(when):
                err(f"SalesDateTime '{when}' must be the facility's local date and time without a time zone.")
            else:
                try:
                    dt.datetime.fromisoformat(when)
                except ValueError:
                    err(f"SalesDateTime '{when}' is not a valid date and time.")
            customer = field_ci(item, "SalesCustomerType")
            allowed = {"Consumer": flags["CanSellToConsumers"], "Patient": flags["CanSellToPatients"],
                       "Caregiver": flags["CanSellToCaregivers"], "ExternalPatient": flags["CanSellToExternalPatients"]}
            if customer not in CUSTOMER_TYPES:
                err(f"SalesCustomerType '{customer}' is not a valid customer type.")
            elif not allowed[customer]:
                err(f"This facility cannot sell to {customer}.")
            patient = field_ci(item, "PatientLicenseNumber")
            caregiver = field_ci(item, "CaregiverLicenseNumber")
            if customer in ("Patient", "Caregiver", "ExternalPatient") and not patient:
                err(f"PatientLicenseNumber is required for {customer} sales.")
            if customer == "Caregiver" and not caregiver:
                err("CaregiverLicenseNumber is required for Caregiver sales.")
            transactions = field_ci(item, "Transactions")
            if not isinstance(transactions, list) or not transactions:
                err("At least one transaction is required.")
                transactions = []
            lines = []
            for t in transactions:
                label = field_ci(t, "PackageLabel")
                quantity = _decimal(field_ci(t, "Quantity"))
                unit = _unit(field_ci(t, "UnitOfMeasure"))
                amount = _decimal(field_ci(t, "TotalAmount"))
                package = self._packages.get(label) if isinstance(label, str) else None
                if package is None or package["License"] != lic:
                    err(f"Package {label} was not found.")
                    continue
                if package["IsFinished"] or package["ArchivedDate"] is not None:
                    err(f"Package {label} is not active.")
                    continue
                if package["IsOnHold"]:
                    err(f"Package {label} is on hold.")
                    continue
                if package["LabTestingState"] not in ("TestPassed", "NotRequired"):
                    err(f"Package {label} has not passed lab testing.")
                    continue
                if quantity is None or quantity <= 0:
                    err(f"Quantity for package {label} must be greater than zero.")
                    continue
                if unit is None:
                    err(f"Unit of measure '{field_ci(t, 'UnitOfMeasure')}' is not valid.")
                    continue
                in_package_unit = convert(quantity, unit, package["UnitOfMeasureName"])
                if in_package_unit is None:
                    err(f"Unit of measure {unit} cannot be used for package {label} ({package['UnitOfMeasureName']}).")
                    continue
                if amount is None or amount < 0:
                    err(f"TotalAmount for package {label} must be zero or more.")
                    continue
                demand[label] = demand.get(label, Decimal(0)) + in_package_unit
                line = {"PackageLabel": label, "Quantity": quantity, "UnitOfMeasure": unit, "TotalAmount": amount}
                for extra in ("Price", "DiscountAmount", "SubTotal", "SalesTax", "ExciseTax", "CityTax", "CountyTax",
                              "MunicipalTax", "InvoiceNumber", "UnitThcPercent", "UnitThcContent",
                              "UnitThcContentUnitOfMeasure", "UnitWeight", "UnitWeightUnitOfMeasure", "QrCodes"):
                    value = field_ci(t, extra)
                    if value is not None:
                        line[extra] = value
                line["_PackageQuantity"] = in_package_unit
                lines.append(line)
            parsed.append({"row": row, "id": receipt_id, "item": item, "lines": lines})
        for label, need in demand.items():
            have = self._shop_quantity(label)  # what vehicles carry of it cannot be sold at the counter
            if need > have:
                rows = sorted({p["row"] for p in parsed for l in p["lines"] if l["PackageLabel"] == label})
                for row in rows or [0]:
                    errors.append({"row": row, "message": f"Package {label} does not have enough quantity "
                                                          f"({dumps(have)} {self._packages[label]['UnitOfMeasureName']} available)."})
        if errors:
            errors.sort(key=lambda e: e["row"])
            return (400, errors, {}, False), []
        return None, parsed

    def _apply_lines(self, lines: list[dict[str, Any]], sign: int, now: dt.datetime) -> None:
        for line in lines:
            package = self._packages[line["PackageLabel"]]
            package["Quantity"] = max(Decimal(0), package["Quantity"] - sign * line["_PackageQuantity"])
            if sign < 0 and package["IsFinished"] and package["Quantity"] > 0:
                # README: Metrc puts the difference back on the package, "unfinishing it if needed"
                package["IsFinished"] = False
                package["FinishedDate"] = None
            package["LastModified"] = now

    def _receipt_record(self, lic: str, receipt_id: int, entry: dict[str, Any], now: dt.datetime,
                        old: Optional[dict[str, Any]] = None) -> dict[str, Any]:
        item = entry["item"]
        when = field_ci(item, "SalesDateTime")
        local = dt.datetime.fromisoformat(when)
        total = sum((l["TotalAmount"] for l in entry["lines"]), Decimal(0))
        return {
            "Id": receipt_id, "ReceiptNumber": old["ReceiptNumber"] if old else f"{receipt_id:010d}",
            "SalesDateTime": local.strftime("%Y-%m-%dT%H:%M:%S.") + f"{local.microsecond // 1000:03d}",
            "SalesCustomerType": field_ci(item, "SalesCustomerType"),
            "PatientLicenseNumber": field_ci(item, "PatientLicenseNumber"),
            "CaregiverLicenseNumber": field_ci(item, "CaregiverLicenseNumber"),
            "IdentificationMethod": field_ci(item, "IdentificationMethod"),
            "PatientRegistrationLocationId": field_ci(item, "PatientRegistrationLocationId"),
            "ExternalReceiptNumber": self._external_number(item, old),
            "TotalPackages": len({l["PackageLabel"] for l in entry["lines"]}), "TotalPrice": total,
            "Transactions": entry["lines"], "IsFinal": False, "ArchivedDate": None,
            "RecordedDateTime": old["RecordedDateTime"] if old else now, "RecordedByUserName": "Independent Integrator",
            "LastModified": now, "_License": lic,
        }

    def _external_number(self, item: dict[str, Any], old: Optional[dict[str, Any]]) -> Any:
        given = field_ci(item, "ExternalReceiptNumber")
        if old is None:
            return given
        if self.edit_external_number == "body" and given is not None:
            return given
        return old["ExternalReceiptNumber"]

    def _write_answer(self, ids: list[int]) -> Any:
        """What a successful PUT, finalize, unfinalize or DELETE carries (switch ``write_answer``)."""
        return {"Ids": ids, "Warnings": None} if self.write_answer == "ids" else None

    def _post_receipts(self, lic: str, body: Any, body_error: Optional[str]):
        refusal, parsed = self._validate_receipts(lic, body, body_error, editing=False)
        if refusal:
            return refusal
        now = dt.datetime.now(dt.timezone.utc)
        ids = []
        for entry in parsed:  # no deduplication by ExternalReceiptNumber (README: none is known)
            receipt_id = next(self._ids)
            self._receipts[receipt_id] = self._receipt_record(lic, receipt_id, entry, now)
            self._apply_lines(entry["lines"], +1, now)
            ids.append(receipt_id)
        return 200, {"Ids": ids, "Warnings": None}, {}, True

    def _put_receipts(self, lic: str, body: Any, body_error: Optional[str]):
        refusal, parsed = self._validate_receipts(lic, body, body_error, editing=True)
        if refusal:
            return refusal
        now = dt.datetime.now(dt.timezone.utc)
        for entry in parsed:
            old = self._receipts[entry["id"]]
            self._apply_lines(old["Transactions"], -1, now)  # the difference goes back on the package
            self._receipts[entry["id"]] = self._receipt_record(lic, entry["id"], entry, now, old=old)
            self._apply_lines(entry["lines"], +1, now)
        return 200, self._write_answer([entry["id"] for entry in parsed]), {}, True

    def _finalize(self, lic: str, body: Any, body_error: Optional[str], *, final: bool):
        if body_error is not None or not isinstance(body, list) or not body:
            return 400, [{"row": 0, "message": "The request body must be a JSON array of {Id}."}], {}, False
        if len(body) > self.object_limit:
            return 413, {"Message": f"Request contains {len(body)} objects; the limit is {self.object_limit}."}, {}, False
        errors, targets = [], []
        for row, item in enumerate(body):
            rid = field_ci(item, "Id")
            receipt = self._receipts.get(rid) if isinstance(rid, int) else None
            if receipt is None or receipt["_License"] != lic:
                errors.append({"row": row, "message": f"Sales Receipt Id {rid} was not found."})
            elif receipt["ArchivedDate"] is not None:
                errors.append({"row": row, "message": f"Sales Receipt {rid} is archived."})
            else:
                targets.append(receipt)
        if errors:
            return 400, errors, {}, False
        now = dt.datetime.now(dt.timezone.utc)
        for receipt in targets:
            receipt["IsFinal"] = final
            receipt["LastModified"] = now
        return 200, self._write_answer([r["Id"] for r in targets]), {}, True

    def _archive(self, receipt: dict[str, Any]):
        if receipt["IsFinal"]:
            return 400, [{"row": 0, "message": f"Sales Receipt {receipt['Id']} is finalized and cannot be archived."}], {}, False
        if receipt["ArchivedDate"] is not None:
            if self.archive_again == "200":
                return 200, self._write_answer([receipt["Id"]]), {}, False
            return 400, [{"row": 0, "message": f"Sales Receipt {receipt['Id']} is already archived."}], {}, False
        now = dt.datetime.now(dt.timezone.utc)
        self._apply_lines(receipt["Transactions"], -1, now)  # a full return: every quantity goes back
        receipt["ArchivedDate"] = now
        receipt["LastModified"] = now
        return 200, self._write_answer([receipt["Id"]]), {}, True

    def _validate_adjustments(self, lic: str, body: Any, body_error: Optional[str]) \
            -> tuple[Optional[tuple[int, Any, dict[str, str], bool]], list[dict[str, Any]]]:
        """POST /packages/v2/adjust (spec: PostPackageAdjustRequest {Label, Quantity, UnitOfMeasure,
        AdjustmentReason, AdjustmentDate, ReasonNote}): row errors (the whole request refused) or the parsed
        rows. Caller holds the lock."""
        if body_error is not None or not isinstance(body, list):
            return (400, [{"row": 0, "message": "The request body must be a JSON array of package adjustments."}], {}, False), []
        if len(body) > self.object_limit:
            return (413, {"Message": f"Request contains {len(body)} objects; the limit is {self.object_limit}."}, {}, False), []
        if not body:
            return (400, [{"row": 0, "message": "No package adjustments were submitted."}], {}, False), []
        reasons = {r["Name"].lower(): r for r in self._adjust_reasons}
        today = dt.datetime.now(self.tz).date()
        errors: list[dict[str, Any]] = []
        parsed: list[dict[str, Any]] = []
        change: dict[str, Decimal] = {}  # net change per package over the whole request, in its unit
        for row, item in enumerate(body):
            def err(message: str) -> None:
                errors.append({"row": row, "message": message})
            if not isinstance(item, dict):
                err("Each package adjustment must be an object.")
                continue
            ok = True
            label = field_ci(item, "Label")
            package = self._packages.get(label) if isinstance(label, str) else None
            if package is None or package["License"] != lic:
                err(f"Package {label} was not found.")
                ok = False
            elif package["IsFinished"] or package["ArchivedDate"] is not None:
                err(f"Package {label} is not active.")
                ok = False
            quantity = _decimal(field_ci(item, "Quantity"))
            if quantity is None or quantity == 0:
                err(f"Quantity for package {label} must be a number other than zero.")
                ok = False
            unit = _unit(field_ci(item, "UnitOfMeasure"))
            in_package_unit = None
            if unit is None:
                err(f"Unit of measure '{field_ci(item, 'UnitOfMeasure')}' is not valid.")
                ok = False
            elif package is not None and quantity is not None:
                in_package_unit = convert(quantity, unit, package["UnitOfMeasureName"])
                if in_package_unit is None:
                    err(f"Unit of measure {unit} cannot be used for package {label} ({package['UnitOfMeasureName']}).")
                    ok = False
            reason_name = field_ci(item, "AdjustmentReason")
            reason = reasons.get(reason_name.strip().lower()) if isinstance(reason_name, str) else None
            note = field_ci(item, "ReasonNote")
            if reason is None:
                err(f"Adjustment reason '{reason_name}' is not valid.")
                ok = False
            elif reason["RequiresNote"] and not (isinstance(note, str) and note.strip()):
                err(f"A reason note is required for the adjustment reason {reason['Name']}.")
                ok = False
            if note is not None and not isinstance(note, str):
                err("ReasonNote must be text.")
                ok = False
            raw_date = field_ci(item, "AdjustmentDate")
            day = None
            if isinstance(raw_date, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw_date):
                try:
                    day = dt.date.fromisoformat(raw_date)
                except ValueError:
                    day = None
            elif isinstance(raw_date, str) and self.adjust_date_format == "lenient" and _LOCAL_DT.match(raw_date):
                try:
                    day = dt.datetime.fromisoformat(raw_date).date()
                except ValueError:
                    day = None
            if day is None:
                err(f"AdjustmentDate '{raw_date}' is not a date (yyyy-mm-dd).")
                ok = False
            elif day > today:
                err(f"AdjustmentDate {day.isoformat()} is in the future for this facility.")
                ok = False
            if not ok:
                continue
            change[label] = change.get(label, Decimal(0)) + in_package_unit
            parsed.append({"row": row, "label": label, "quantity": quantity, "unit": unit,
                           "package_quantity": in_package_unit, "reason": reason["Name"],
                           "note": note, "date": day.isoformat()})
        for label, delta in change.items():
            have = self._shop_quantity(label)  # what vehicles carry of it cannot be adjusted away
            if have + delta < 0:
                for entry in parsed:
                    if entry["label"] == label:
                        errors.append({"row": entry["row"], "message": f"Package {label} does not have enough quantity "
                                                                     f"({dumps(have)} {self._packages[label]['UnitOfMeasureName']} available)."})
        if errors:
            errors.sort(key=lambda e: e["row"])
            return (400, errors, {}, False), []
        return None, parsed

    def _apply_adjustments(self, lic: str, parsed: list[dict[str, Any]]) -> list[int]:
        now = dt.datetime.now(dt.timezone.utc)
        ids = []
        for entry in parsed:
            package = self._packages[entry["label"]]
            package["Quantity"] = package["Quantity"] + entry["package_quantity"]
            package["LastModified"] = now
            aid = next(self._adjustment_ids)
            self._adjustments[aid] = {
                "Id": aid, "PackageId": package["Id"], "PackageLabel": entry["label"], "Quantity": entry["quantity"],
                "UnitOfMeasure": entry["unit"], "_PackageQuantity": entry["package_quantity"],
                "AdjustmentReason": entry["reason"], "ReasonNote": entry["note"], "AdjustmentDate": entry["date"],
                "RecordedDateTime": now, "RecordedByUserName": "Independent Integrator", "_License": lic,
            }
            ids.append(aid)
        return ids

    def _post_adjust(self, lic: str, body: Any, body_error: Optional[str]):
        refusal, parsed = self._validate_adjustments(lic, body, body_error)
        if refusal:
            return refusal
        self._apply_adjustments(lic, parsed)
        return 200, None, {}, True  # README: writes other than a receipt POST answer 200, often empty

    def _post_checkins(self, lic: str, body: Any, body_error: Optional[str]):
        if body_error is not None or not isinstance(body, list) or not body:
            return 400, [{"row": 0, "message": "The request body must be a JSON array of check-ins."}], {}, False
        if len(body) > self.object_limit:
            return 413, {"Message": f"Request contains {len(body)} objects; the limit is {self.object_limit}."}, {}, False
        locations = {l["Id"] for l in self._checkin_locations.get(lic, [])}
        errors = []
        for row, item in enumerate(body):
            if not field_ci(item, "PatientLicenseNumber"):
                errors.append({"row": row, "message": "PatientLicenseNumber is required."})
            if field_ci(item, "CheckInLocationId") not in locations:
                errors.append({"row": row, "message": f"CheckInLocationId {field_ci(item, 'CheckInLocationId')} is not valid."})
            for key in ("CheckInDate", "RegistrationStartDate", "RegistrationExpiryDate"):
                value = field_ci(item, key)
                if value is not None and not (isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value)):
                    errors.append({"row": row, "message": f"{key} '{value}' is not a date."})
        if errors:
            return 400, errors, {}, False
        names = {l["Id"]: l["Name"] for l in self._checkin_locations.get(lic, [])}
        for item in body:
            cid = next(self._checkin_ids)
            self._checkins[cid] = {
                "Id": cid, "PatientLicenseNumber": field_ci(item, "PatientLicenseNumber"),
                "CheckInLocationId": field_ci(item, "CheckInLocationId"),
                "CheckInLocationName": names.get(field_ci(item, "CheckInLocationId")),
                "RegistrationStartDate": field_ci(item, "RegistrationStartDate"),
                "RegistrationExpiryDate": field_ci(item, "RegistrationExpiryDate"),
                "CheckInDate": field_ci(item, "CheckInDate") or dt.datetime.now(self.tz).date().isoformat(),
                "_License": lic,
            }
        return 200, None, {}, True

    # ================================================================================== deliveries
    #
    # Sales deliveries (one order, one customer) and retailer deliveries ("trips": a vehicle selling on the road),
    # from the spec's paths and schemas (PostSaleDeliveriesRequest, PutSaleDeliveryCompleteRequest, SaleDelivery,
    # PostSaleDeliveryRetailerRequest, ...Depart/Sale/Restock/End, Retailer), README "Deliveries", and, where those
    # are silent, docs/deliveries.md "Metrc's side". Every write is all or nothing: the rows are applied one after
    # the other (a later row sees what an earlier one did) and, when any row is refused, everything is put back
    # and the answer is 400 with every refused row.

    _DRIVER_FIELDS = ("DriverEmployeeId", "DriverName", "DriversLicenseNumber", "VehicleMake", "VehicleModel",
                      "VehicleLicensePlateNumber")
    _RECIPIENT_FIELDS = ("RecipientAddressStreet1", "RecipientAddressStreet2", "RecipientAddressCity",
                         "RecipientAddressCounty", "RecipientAddressState", "RecipientAddressPostalCode")
    #: a part of the recipient's address (or the planned route) and the FacilityType flag that allows it
    _ALLOW_FLAGS = (("RecipientAddressStreet1", "SalesDeliveryAllowAddress"),
                    ("RecipientAddressStreet2", "SalesDeliveryAllowAddress"),
                    ("RecipientAddressCity", "SalesDeliveryAllowCity"),
                    ("RecipientAddressCounty", "SalesDeliveryAllowCounty"),
                    ("RecipientAddressState", "SalesDeliveryAllowState"),
                    ("RecipientAddressPostalCode", "SalesDeliveryAllowZip"),
                    ("PlannedRoute", "SalesDeliveryAllowPlannedRoute"))
    #: SaleDelivery as the spec lists it (GET /sales/v2/deliveries/{id}, .../active, .../inactive)
    _SALE_DELIVERY_KEYS = ("Id", "DeliveryNumber", "FacilityLicenseNumber", "FacilityName", "TransporterFacilityId",
                           "TransporterFacilityLicenseNumber", "TransporterFacilityName", "SalesDateTime",
                           "SalesCustomerType", "PatientLicenseNumber", "ConsumerId", "DriverEmployeeId", "DriverName",
                           "DriversLicenseNumber", "VehicleMake", "VehicleModel", "VehicleLicensePlateNumber",
                           "RecipientName", "PlannedRoute", "Direction", "EstimatedDepartureDateTime",
                           "ActualDepartureDateTime", "EstimatedArrivalDateTime", "ActualArrivalDateTime",
                           "EstimatedReturnDepartureDateTime", "ActualReturnDepartureDateTime",
                           "EstimatedReturnArrivalDateTime", "ActualReturnArrivalDateTime", "TotalPackages",
                           "TotalPrice", "AcceptedDateTime", "Transactions", "CompletedDateTime", "SalesDeliveryState",
                           "VoidedDate", "RecordedDateTime", "RecordedByUserName", "LastModified")
    #: Retailer as the spec lists it (GET /sales/v2/deliveries/retailer/{id}, .../active, .../inactive)
    _RETAILER_KEYS = ("Id", "RetailerDeliveryNumber", "FacilityLicenseNumber", "FacilityName", "DateTime",
                      "DriverEmployeeId", "DriverName", "DriversLicenseNumber", "VehicleMake", "VehicleModel",
                      "VehicleLicensePlateNumber", "VehicleInfo", "Direction", "EstimatedDepartureDateTime",
                      "ActualDepartureDateTime", "RestockDateTime", "TotalPackages", "TotalPrice", "TotalPriceSold",
                      "AcceptedDateTime", "Destinations", "CompletedDateTime", "RetailerDeliveryState",
                      "AllowFullEdit", "Leg", "VoidedDate", "RecordedDateTime", "RecordedByUserName", "LastModified",
                      "Packages")
    _LINE_EXTRAS = ("Price", "DiscountAmount", "SubTotal", "SalesTax", "ExciseTax", "CityTax", "CountyTax",
                    "MunicipalTax", "InvoiceNumber", "UnitThcPercent", "UnitThcContent", "UnitThcContentUnitOfMeasure",
                    "UnitWeight", "UnitWeightUnitOfMeasure")
    _ACTIVE_TRIP = ("Created", "InTransit")

    # ---- inspection and Metrc-side actions (no request recorded)

    @staticmethod
    def _internal_view(value: Any) -> Any:
        """An internal record for a test to read: a deep copy, leading underscores dropped from every key."""
        if isinstance(value, dict):
            return {k.lstrip("_"): IndependentMetrc._internal_view(v) for k, v in value.items()}
        if isinstance(value, list):
            return [IndependentMetrc._internal_view(v) for v in value]
        return copy.deepcopy(value)

    def deliveries(self) -> list[dict[str, Any]]:
        """Every sales delivery Metrc holds, oldest first (internal record: the SaleDelivery fields, also
        PhoneNumberForQuestions and the recipient's address, Transactions as posted (PackageLabel, Quantity,
        UnitOfMeasure, TotalAmount, PackageQuantity in the package's unit), AcceptedPackages, ReturnedPackages
        (Label, ReturnQuantityVerified, ReturnUnitOfMeasure, ReturnReason, ReturnReasonNote, PackageQuantity),
        Steps ([{Step, At, By}]), License)."""
        with self._lock:
            return [self._internal_view(d) for d in sorted(self._deliveries.values(), key=lambda d: d["Id"])]

    def delivery(self, delivery_id: int) -> dict[str, Any]:
        with self._lock:
            return self._internal_view(self._deliveries[delivery_id])

    def trips(self) -> list[dict[str, Any]]:
        """Every retailer delivery Metrc holds, oldest first (internal record: the Retailer fields; Vehicle
        {label: {PackageLabel, Quantity, UnitOfMeasure, TotalPrice, DateTime, PackageQuantity}} is what the vehicle
        carries now, PackageQuantity in the package's own unit; Destinations are its sales; EndPackages the counts
        it ended with; Steps [{Step, At, By}]; License)."""
        with self._lock:
            return [self._internal_view(t) for t in sorted(self._trips.values(), key=lambda t: t["Id"])]

    def trip(self, trip_id: int) -> dict[str, Any]:
        with self._lock:
            return self._internal_view(self._trips[trip_id])

    def carried_quantity(self, label: str, trip_id: Optional[int] = None) -> Decimal:
        """What active trips' vehicles (or that one trip's) carry of a package, in the package's unit."""
        with self._lock:
            if trip_id is not None:
                entry = self._trips[trip_id]["_Vehicle"].get(label)
                return entry["_PackageQuantity"] if entry else Decimal(0)
            return self._carried(label)

    def shop_quantity(self, label: str) -> Decimal:
        """The package's Quantity less what active trips carry of it (docs/deliveries.md)."""
        with self._lock:
            return self._shop_quantity(label)

    def delivery_requests(self, method: Optional[str] = None) -> list[Request]:
        """Every request to a /sales/v2/deliveries path (trips included), oldest first."""
        return self.requests(method, "/sales/v2/deliveries*")

    def return_reasons(self) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._return_reasons)

    def set_return_reasons(self, reasons: list[tuple[str, bool]]) -> None:
        """The delivery return reasons as Metrc lists them: (Name, RequiresNote) pairs."""
        with self._lock:
            self._return_reasons = [self._reason(name, note) for name, note in reasons]

    def _website(self, what: str, action: Callable[[list[str], dt.datetime], Any]) -> Any:
        """Run one row of a write as Metrc's website would: validated and applied exactly as the API would, no
        request recorded; a refusal raises ValueError with Metrc's words and changes nothing."""
        with self._lock:
            snapshot = self._snapshot()
            errs: list[str] = []
            result = action(errs, dt.datetime.now(dt.timezone.utc))
            if errs:
                self._restore(snapshot)
                raise ValueError(f"Metrc would refuse this {what}: {'; '.join(errs)}")
            return result

    def plant_delivery(self, item: dict[str, Any], *, license: Optional[str] = None,
                       recorded_by: str = "Metrc Website User") -> int:
        """A sales delivery recorded without this server's HTTP front (Metrc's website, another client): ``item``
        as a POST /sales/v2/deliveries item (PascalCase). Returns its Id."""
        lic = license or self.license
        return self._website("delivery", lambda errs, now: self._sales_delivery_row(
            lic, item, errs, now, editing=False, by=recorded_by))

    def website_edit_delivery(self, delivery_id: int, *, recorded_by: str = "Metrc Website User",
                              **changes: Any) -> None:
        """A sales delivery edited on Metrc's website: ``changes`` replace fields of its content as a
        PUT /sales/v2/deliveries item gives them (e.g. ``Transactions=[...]``); applied as that PUT."""
        with self._lock:
            old = self._deliveries[delivery_id]
            item = self._delivery_item_of(old)
            item.update(changes)
            item["Id"] = delivery_id
            lic = old["_License"]
        self._website("edit", lambda errs, now: self._sales_delivery_row(lic, item, errs, now, editing=True,
                                                                         by=recorded_by))

    def website_complete_delivery(self, delivery_id: int, *, accepted: Optional[list[str]] = None,
                                  returned: Optional[list[dict[str, Any]]] = None,
                                  actual_arrival: Optional[str] = None) -> None:
        """A sales delivery completed on Metrc's website, as PUT /sales/v2/deliveries/complete would: ``returned``
        as ReturnedPackages items; ``accepted`` defaults to every label not returned; ``actual_arrival`` (local,
        no zone) to the facility's time now."""
        with self._lock:
            d = self._deliveries[delivery_id]
            returned = returned or []
            back = {field_ci(r, "Label") for r in returned}
            item = {"Id": delivery_id, "ActualArrivalDateTime": actual_arrival or self._local_now(),
                    "AcceptedPackages": accepted if accepted is not None else
                    [l["PackageLabel"] for l in d["Transactions"] if l["PackageLabel"] not in back],
                    "ReturnedPackages": returned}
            lic = d["_License"]
        self._website("completion", lambda errs, now: self._complete_row(lic, item, errs, now,
                                                                         by="Metrc Website User"))

    def website_void_delivery(self, delivery_id: int) -> None:
        """A sales delivery voided on Metrc's website, as DELETE /sales/v2/deliveries/{id} would."""
        self._website("void", lambda errs, now: self._void_delivery(self._deliveries[delivery_id], errs, now,
                                                                    by="Metrc Website User"))

    def plant_trip(self, item: dict[str, Any], *, license: Optional[str] = None,
                   recorded_by: str = "Metrc Website User") -> int:
        """A retailer delivery recorded without this server's HTTP front: ``item`` as a
        POST /sales/v2/deliveries/retailer item. Returns its Id."""
        lic = license or self.license
        return self._website("retailer delivery", lambda errs, now: self._trip_create_row(
            lic, item, errs, now, by=recorded_by))

    def website_depart_trip(self, trip_id: int) -> None:
        """A trip departed on Metrc's website, as POST /sales/v2/deliveries/retailer/depart would."""
        with self._lock:
            lic = self._trips[trip_id]["_License"]
        self._website("departure", lambda errs, now: self._depart_row(lic, {"RetailerDeliveryId": trip_id}, errs, now,
                                                                      by="Metrc Website User"))

    def website_end_trip(self, trip_id: int, *, counts: Optional[list[dict[str, Any]]] = None,
                         actual_arrival: Optional[str] = None) -> None:
        """A trip ended on Metrc's website, as POST /sales/v2/deliveries/retailer/end would; ``counts`` as its
        Packages items (default: every package on the vehicle, with what it holds)."""
        with self._lock:
            t = self._trips[trip_id]
            if counts is None:
                counts = [{"Label": e["PackageLabel"], "EndQuantity": e["Quantity"], "EndUnitOfMeasure": e["UnitOfMeasure"]}
                          for e in t["_Vehicle"].values()]
            item = {"RetailerDeliveryId": trip_id, "ActualArrivalDateTime": actual_arrival or self._local_now(),
                    "Packages": counts}
            lic = t["_License"]
        self._website("end", lambda errs, now: self._end_row(lic, item, errs, now, by="Metrc Website User"))

    def website_void_trip(self, trip_id: int) -> None:
        """A trip voided on Metrc's website, as DELETE /sales/v2/deliveries/retailer/{id} would."""
        self._website("void", lambda errs, now: self._void_trip(self._trips[trip_id], errs, now,
                                                                by="Metrc Website User"))

    # ---- state helpers (caller holds the lock)

    def _snapshot(self) -> Any:
        return copy.deepcopy((self._packages, self._deliveries, self._trips))

    def _restore(self, snapshot: Any) -> None:
        self._packages, self._deliveries, self._trips = snapshot

    def _flags(self, lic: str) -> dict[str, Any]:
        return self._facility_json(self._facilities[lic])["FacilityType"]

    def _carried(self, label: str) -> Decimal:
        return sum((t["_Vehicle"][label]["_PackageQuantity"] for t in self._trips.values()
                    if t["RetailerDeliveryState"] in self._ACTIVE_TRIP and label in t["_Vehicle"]), Decimal(0))

    def _shop_quantity(self, label: str) -> Decimal:
        return self._packages[label]["Quantity"] - self._carried(label)

    def _mark_vehicles(self, labels: Any, now: dt.datetime) -> None:
        """IsOnRetailerDelivery of these packages: whether an active trip carries them."""
        for label in set(labels):
            package = self._packages[label]
            on = any(t["RetailerDeliveryState"] in self._ACTIVE_TRIP and label in t["_Vehicle"]
                     for t in self._trips.values())
            if package["IsOnRetailerDelivery"] != on:
                package["IsOnRetailerDelivery"] = on
                package["LastModified"] = now

    def _move(self, label: str, package_quantity: Decimal, now: dt.datetime) -> None:
        """A package's Quantity changes by ``package_quantity`` (in its unit); taking to zero or below is
        prevented by the caller's checks."""
        package = self._packages[label]
        package["Quantity"] = package["Quantity"] + package_quantity
        if package_quantity > 0 and package["IsFinished"] and package["Quantity"] > 0:
            package["IsFinished"] = False  # as for receipts: unfinished when something comes back
            package["FinishedDate"] = None
        package["LastModified"] = now

    def _local_now(self) -> str:
        return self._local_text(dt.datetime.now(self.tz).replace(tzinfo=None))

    @staticmethod
    def _local_text(moment: dt.datetime) -> str:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}"

    def _local_field(self, item: Any, name: str, errs: list[str], *, required: bool = True) -> Optional[str]:
        """A facility-local date and time without zone (spec: "must be the actual date and time ... without the
        time zone"), normalised to yyyy-mm-ddThh:mm:ss.fff; None when absent."""
        value = field_ci(item, name)
        if value is None or value == "":
            if required:
                errs.append(f"{name} is required.")
            return None
        if not isinstance(value, str) or _HAS_ZONE.search(value) or not _LOCAL_DT.match(value):
            errs.append(f"{name} '{value}' must be the facility's local date and time without a time zone.")
            return None
        try:
            return self._local_text(dt.datetime.fromisoformat(value))
        except ValueError:
            errs.append(f"{name} '{value}' is not a valid date and time.")
            return None

    @staticmethod
    def _text(item: Any, name: str) -> Optional[str]:
        value = field_ci(item, name)
        if isinstance(value, str) and value.strip():
            return value
        return None

    @staticmethod
    def _int_id(value: Any) -> Optional[int]:
        if isinstance(value, bool):
            return None
        if isinstance(value, int):
            return value
        if isinstance(value, Decimal) and value == value.to_integral_value():
            return int(value)
        if isinstance(value, str) and value.strip().isdigit():
            return int(value.strip())
        return None

    def _usable_package(self, lic: str, label: Any, errs: list[str]) -> Optional[dict[str, Any]]:
        package = self._packages.get(label) if isinstance(label, str) else None
        if package is None or package["License"] != lic:
            errs.append(f"Package {label} was not found.")
            return None
        if package["IsFinished"] or package["ArchivedDate"] is not None:
            errs.append(f"Package {label} is not active.")
            return None
        if package["IsOnHold"]:
            errs.append(f"Package {label} is on hold.")
            return None
        if package["LabTestingState"] not in ("TestPassed", "NotRequired"):
            errs.append(f"Package {label} has not passed lab testing.")
            return None
        return package

    def _customer_checks(self, item: Any, flags: dict[str, Any], errs: list[str]) -> dict[str, Any]:
        """The customer and recipient of a sales delivery or of a trip's sale, by the facility's delivery flags."""
        customer = field_ci(item, "SalesCustomerType")
        delivers = {"Consumer": flags["CanDeliverSalesToConsumers"] and flags["CanSellToConsumers"],
                    "Patient": flags["CanDeliverSalesToPatients"] and flags["CanSellToPatients"],
                    "Caregiver": flags["CanDeliverSalesToPatients"] and flags["CanSellToCaregivers"],
                    "ExternalPatient": flags["CanDeliverSalesToPatients"] and flags["CanSellToExternalPatients"]}
        if customer not in CUSTOMER_TYPES:
            errs.append(f"SalesCustomerType '{customer}' is not a valid customer type.")
        elif not delivers[customer]:
            errs.append(f"This facility cannot deliver sales to {customer}.")
        patient = self._text(item, "PatientLicenseNumber")
        if customer in ("Patient", "Caregiver", "ExternalPatient") and flags["SalesDeliveryRequirePatientNumber"] \
                and patient is None:
            errs.append(f"PatientLicenseNumber is required for {customer} deliveries.")
        consumer = self._text(item, "ConsumerId")
        if flags["SalesDeliveryRequireConsumerId"] and consumer is None:
            errs.append("ConsumerId is required.")
        recipient = self._text(item, "RecipientName")
        if flags["SalesDeliveryRequireRecipientName"] and recipient is None:
            errs.append("RecipientName is required.")
        for name, flag in self._ALLOW_FLAGS:
            if self._text(item, name) is not None and not flags[flag]:
                errs.append(f"{name} is not allowed for this facility's deliveries.")
        values = {"SalesCustomerType": customer, "PatientLicenseNumber": patient, "ConsumerId": consumer,
                  "RecipientName": recipient, "PhoneNumberForQuestions": self._text(item, "PhoneNumberForQuestions"),
                  "PlannedRoute": self._text(item, "PlannedRoute")}
        for name in self._RECIPIENT_FIELDS:
            values[name] = self._text(item, name)
        return values

    def _driver_checks(self, item: Any, errs: list[str]) -> dict[str, Any]:
        values = {}
        for name in self._DRIVER_FIELDS:
            values[name] = self._text(item, name)
            if values[name] is None:
                errs.append(f"{name} is required.")
        values["PhoneNumberForQuestions"] = self._text(item, "PhoneNumberForQuestions")
        return values

    def _sale_lines(self, lic: str, item: Any, errs: list[str], *, spec_first: bool,
                    vehicle: Optional[dict[str, dict[str, Any]]] = None) -> list[dict[str, Any]]:
        """Transactions[] of a sales delivery (SaleTransaction or receipt spelling) or of a trip's sale (from
        ``vehicle``): parsed lines with _PackageQuantity, in the package's unit. Each label once."""
        transactions = field_ci(item, "Transactions")
        if not isinstance(transactions, list) or not transactions:
            errs.append("At least one transaction is required.")
            return []
        lines, seen = [], set()
        for t in transactions:
            if not isinstance(t, dict):
                errs.append("Each transaction must be an object.")
                continue
            label = field_ci(t, "PackageLabel")
            spec = (field_ci(t, "QuantitySold"), field_ci(t, "UnitOfMeasureName"), field_ci(t, "TotalPrice"))
            receipt = (field_ci(t, "Quantity"), field_ci(t, "UnitOfMeasure"), field_ci(t, "TotalAmount"))
            first, second = (spec, receipt) if spec_first else (receipt, spec)
            raw_quantity, raw_unit, raw_amount = (a if a is not None else b for a, b in zip(first, second))
            if label in seen:
                errs.append(f"Package {label} is listed more than once.")
                continue
            seen.add(label)
            if vehicle is not None:
                if label not in vehicle:
                    errs.append(f"Package {label} is not on the vehicle.")
                    continue
                package = self._packages[label]
            else:
                package = self._usable_package(lic, label, errs)
                if package is None:
                    continue
            quantity, unit, amount = _decimal(raw_quantity), _unit(raw_unit), _decimal(raw_amount)
            if raw_quantity is None:
                errs.append(f"Quantity for package {label} is required.")
                continue
            if quantity is None or quantity <= 0:
                errs.append(f"Quantity for package {label} must be greater than zero.")
                continue
            if unit is None:
                errs.append(f"Unit of measure '{raw_unit}' is not valid.")
                continue
            in_package_unit = convert(quantity, unit, package["UnitOfMeasureName"])
            if in_package_unit is None:
                errs.append(f"Unit of measure {unit} cannot be used for package {label} ({package['UnitOfMeasureName']}).")
                continue
            if amount is None or amount < 0:
                errs.append(f"The total amount for package {label} must be zero or more.")
                continue
            line = {"PackageLabel": label, "Quantity": quantity, "UnitOfMeasure": unit, "TotalAmount": amount}
            for extra in self._LINE_EXTRAS:
                value = field_ci(t, extra)
                if value is not None:
                    line[extra] = value
            line["_PackageQuantity"] = in_package_unit
            lines.append(line)
        return lines

    # ---- sales deliveries

    def _sales_delivery_row(self, lic: str, item: Any, errs: list[str], now: dt.datetime, *, editing: bool,
                            by: str = "Independent Integrator") -> Optional[int]:
        old = None
        if editing:
            raw_id = field_ci(item, "Id")
            old = self._deliveries.get(self._int_id(raw_id))
            if old is None or old["_License"] != lic:
                errs.append(f"Sales Delivery Id {raw_id} was not found.")
                return None
            if old["SalesDeliveryState"] != "InTransit":
                errs.append(f"Sales Delivery {old['Id']} is {old['SalesDeliveryState'].lower()} and cannot be edited.")
                return None
        flags = self._flags(lic)
        when = self._local_field(item, "SalesDateTime", errs)
        customer = self._customer_checks(item, flags, errs)
        driver = self._driver_checks(item, errs)
        departure = self._local_field(item, "EstimatedDepartureDateTime", errs)
        arrival = self._local_field(item, "EstimatedArrivalDateTime", errs)
        lines = self._sale_lines(lic, item, errs, spec_first=self.delivery_lines_read == "spec")
        for line in lines:  # from the shop; an edit first gives back what the delivery holds of it
            label = line["PackageLabel"]
            have = self._shop_quantity(label)
            if old is not None:
                have += sum((l["_PackageQuantity"] for l in old["Transactions"] if l["PackageLabel"] == label), Decimal(0))
            if line["_PackageQuantity"] > have:
                errs.append(f"Package {label} does not have enough quantity "
                            f"({dumps(have)} {self._packages[label]['UnitOfMeasureName']} available).")
        if errs:
            return None
        if old is not None:
            for l in old["Transactions"]:
                self._move(l["PackageLabel"], l["_PackageQuantity"], now)
        for l in lines:
            self._move(l["PackageLabel"], -l["_PackageQuantity"], now)
        did = old["Id"] if old is not None else next(self._delivery_ids)
        record = {
            "Id": did, "DeliveryNumber": old["DeliveryNumber"] if old else f"{did:010d}",
            "FacilityLicenseNumber": lic, "FacilityName": self._facilities[lic].name,
            "TransporterFacilityId": None, "TransporterFacilityLicenseNumber": None, "TransporterFacilityName": None,
            "SalesDateTime": when, **customer, **driver, "Direction": None,
            "EstimatedDepartureDateTime": departure, "ActualDepartureDateTime": None,
            "EstimatedArrivalDateTime": arrival, "ActualArrivalDateTime": None,
            "EstimatedReturnDepartureDateTime": None, "ActualReturnDepartureDateTime": None,
            "EstimatedReturnArrivalDateTime": None, "ActualReturnArrivalDateTime": None,
            "TotalPackages": len(lines), "TotalPrice": sum((l["TotalAmount"] for l in lines), Decimal(0)),
            "AcceptedDateTime": None, "Transactions": lines, "CompletedDateTime": None,
            "SalesDeliveryState": "InTransit", "VoidedDate": None,
            "RecordedDateTime": old["RecordedDateTime"] if old else now, "RecordedByUserName": by,
            "LastModified": now, "_License": lic, "_AcceptedPackages": [], "_ReturnedPackages": [],
            "_Steps": (old["_Steps"] if old else []) + [{"Step": "update" if old else "create", "At": now, "By": by}],
        }
        self._deliveries[did] = record
        return did

    @staticmethod
    def _delivery_item_of(d: dict[str, Any]) -> dict[str, Any]:
        """A held sales delivery as a POST /sales/v2/deliveries item would give it (receipt-spelt lines)."""
        keys = ("SalesDateTime", "SalesCustomerType", "PatientLicenseNumber", "ConsumerId", *IndependentMetrc._DRIVER_FIELDS,
                "PhoneNumberForQuestions", "RecipientName", *IndependentMetrc._RECIPIENT_FIELDS, "PlannedRoute",
                "EstimatedDepartureDateTime", "EstimatedArrivalDateTime")
        item = {k: d[k] for k in keys if d.get(k) is not None}
        item["Transactions"] = [{k: v for k, v in l.items() if not k.startswith("_")} for l in d["Transactions"]]
        return item

    def _complete_row(self, lic: str, item: Any, errs: list[str], now: dt.datetime, *,
                      by: str = "Independent Integrator") -> Optional[int]:
        raw_id = field_ci(item, "Id")
        d = self._deliveries.get(self._int_id(raw_id))
        if d is None or d["_License"] != lic:
            errs.append(f"Sales Delivery Id {raw_id} was not found.")
            return None
        if d["SalesDeliveryState"] != "InTransit":
            errs.append(f"Sales Delivery {d['Id']} is {d['SalesDeliveryState'].lower()} and cannot be completed.")
            return None
        arrival = self._local_field(item, "ActualArrivalDateTime", errs)
        lines = {l["PackageLabel"]: l for l in d["Transactions"]}
        accepted = field_ci(item, "AcceptedPackages")
        returned = field_ci(item, "ReturnedPackages")
        accepted = [] if accepted is None else accepted
        returned = [] if returned is None else returned
        if not isinstance(accepted, list) or not all(isinstance(a, str) for a in accepted):
            errs.append("AcceptedPackages must be a list of package labels.")
            accepted = []
        if not isinstance(returned, list) or not all(isinstance(r, dict) for r in returned):
            errs.append("ReturnedPackages must be a list of objects.")
            returned = []
        reasons = {r["Name"].lower(): r for r in self._return_reasons}
        counted: dict[str, int] = {}
        back = []
        for label in accepted:
            counted[label] = counted.get(label, 0) + 1
            if label not in lines:
                errs.append(f"Package {label} is not part of Sales Delivery {d['Id']}.")
        for r in returned:
            label = field_ci(r, "Label")
            counted[label] = counted.get(label, 0) + 1
            line = lines.get(label)
            if line is None:
                errs.append(f"Package {label} is not part of Sales Delivery {d['Id']}.")
                continue
            quantity = _decimal(field_ci(r, "ReturnQuantityVerified"))
            unit = _unit(field_ci(r, "ReturnUnitOfMeasure"))
            reason_name = field_ci(r, "ReturnReason")
            reason = reasons.get(reason_name.strip().lower()) if isinstance(reason_name, str) else None
            note = field_ci(r, "ReturnReasonNote")
            ok = True
            if quantity is None or quantity <= 0:
                errs.append(f"ReturnQuantityVerified for package {label} must be greater than zero.")
                ok = False
            if unit != line["UnitOfMeasure"]:
                errs.append(f"ReturnUnitOfMeasure for package {label} must be {line['UnitOfMeasure']}, the unit it was "
                            f"delivered in.")
                ok = False
            elif quantity is not None and quantity > line["Quantity"]:
                errs.append(f"ReturnQuantityVerified for package {label} ({dumps(quantity)}) is more than was delivered "
                            f"({dumps(line['Quantity'])} {line['UnitOfMeasure']}).")
                ok = False
            if reason is None:
                errs.append(f"Return reason '{reason_name}' is not valid.")
                ok = False
            elif reason["RequiresNote"] and not (isinstance(note, str) and note.strip()):
                errs.append(f"A return reason note is required for the return reason {reason['Name']} (package {label}).")
                ok = False
            if ok:
                back.append({"Label": label, "ReturnQuantityVerified": quantity, "ReturnUnitOfMeasure": unit,
                             "ReturnReason": reason["Name"], "ReturnReasonNote": note,
                             "_PackageQuantity": convert(quantity, unit, self._packages[label]["UnitOfMeasureName"])})
        for label, n in counted.items():
            if n > 1 and label in lines:
                errs.append(f"Package {label} is listed more than once.")
        for label in lines:
            if label not in counted:
                errs.append(f"Package {label} of Sales Delivery {d['Id']} is neither accepted nor returned.")
        if errs:
            return None
        for r in back:
            self._move(r["Label"], r["_PackageQuantity"], now)
        d.update({"SalesDeliveryState": "Delivered", "CompletedDateTime": now, "ActualArrivalDateTime": arrival,
                  "LastModified": now, "_AcceptedPackages": list(accepted), "_ReturnedPackages": back})
        d["_Steps"].append({"Step": "complete", "At": now, "By": by})
        return d["Id"]

    def _void_delivery(self, d: dict[str, Any], errs: list[str], now: dt.datetime, *,
                       by: str = "Independent Integrator") -> Optional[int]:
        if d["SalesDeliveryState"] != "InTransit":
            errs.append(f"Sales Delivery {d['Id']} is {d['SalesDeliveryState'].lower()} and cannot be voided.")
            return None
        for l in d["Transactions"]:  # every quantity goes back
            self._move(l["PackageLabel"], l["_PackageQuantity"], now)
        d.update({"SalesDeliveryState": "Voided", "VoidedDate": now, "LastModified": now})
        d["_Steps"].append({"Step": "void", "At": now, "By": by})
        return d["Id"]

    def _hub_row(self, lic: str, item: Any, errs: list[str], now: dt.datetime, *, step: str) -> Optional[int]:
        """PUT /sales/v2/deliveries/hub, hub/accept, hub/depart, hub/verifyID: only for a sales delivery hub
        (FacilityType.IsSalesDeliveryHub), on a delivery in transit."""
        if not self._flags(lic)["IsSalesDeliveryHub"]:
            errs.append("This facility is not a sales delivery hub.")
            return None
        raw_id = field_ci(item, "Id")
        d = self._deliveries.get(self._int_id(raw_id))
        if d is None or d["_License"] != lic:
            errs.append(f"Sales Delivery Id {raw_id} was not found.")
            return None
        if d["SalesDeliveryState"] != "InTransit":
            errs.append(f"Sales Delivery {d['Id']} is {d['SalesDeliveryState'].lower()}.")
            return None
        if step == "hub":
            driver = self._driver_checks(item, errs)
            departure = self._local_field(item, "EstimatedDepartureDateTime", errs)
            arrival = self._local_field(item, "EstimatedArrivalDateTime", errs)
            if errs:
                return None
            d.update(driver)
            d.update({"TransporterFacilityId": self._text(item, "TransporterFacilityId"),
                      "PlannedRoute": self._text(item, "PlannedRoute") or d["PlannedRoute"],
                      "EstimatedDepartureDateTime": departure, "EstimatedArrivalDateTime": arrival})
        elif step == "accept":
            d["AcceptedDateTime"] = now
        elif step == "depart":
            d["ActualDepartureDateTime"] = self._local_now()
        else:  # verifyID
            d["_PaymentType"] = self._text(item, "PaymentType")
            d["_IdVerified"] = True
        d["LastModified"] = now
        d["_Steps"].append({"Step": "hub" if step == "hub" else f"hub {step}", "At": now, "By": "Independent Integrator"})
        return d["Id"]

    def _delivery_public(self, d: dict[str, Any]) -> dict[str, Any]:
        view = {k: d[k] for k in self._SALE_DELIVERY_KEYS}
        view["Transactions"] = [self._sale_transaction(
            {"ArchivedDate": None, "RecordedDateTime": d["RecordedDateTime"],
             "RecordedByUserName": d["RecordedByUserName"], "LastModified": d["LastModified"]},
            line, state=d["SalesDeliveryState"]) for line in d["Transactions"]]
        return self._out(view)

    # ---- retailer deliveries (trips)

    def _trip(self, lic: str, item: Any, errs: list[str]) -> Optional[dict[str, Any]]:
        raw_id = field_ci(item, "RetailerDeliveryId")
        trip = self._trips.get(self._int_id(raw_id))
        if trip is None or trip["_License"] != lic:
            errs.append(f"Retailer Delivery Id {raw_id} was not found.")
            return None
        return trip

    @staticmethod
    def _state_words(trip: dict[str, Any]) -> str:
        return {"Created": "has not departed", "InTransit": "has departed", "Completed": "has ended",
                "Voided": "is voided"}[trip["RetailerDeliveryState"]]

    def _loads(self, lic: str, packages: Any, errs: list[str], trip: Optional[dict[str, Any]], *,
               restock: bool) -> list[dict[str, Any]]:
        """Packages[] of a trip's creation, edit or restock: parsed, checked against the shop (price and
        whole-package rules by the facility's flags; RemoveCurrentPackage only at a restock)."""
        flags = self._flags(lic)
        if not isinstance(packages, list) or not packages or not all(isinstance(p, dict) for p in packages):
            errs.append("At least one package is required.")
            return []
        ops, seen = [], set()
        for p in packages:
            label = field_ci(p, "PackageLabel")
            if label in seen:
                errs.append(f"Package {label} is listed more than once.")
                continue
            seen.add(label)
            removing = field_ci(p, "RemoveCurrentPackage") is True
            if removing:
                if not restock:
                    errs.append(f"Package {label}: RemoveCurrentPackage is only for a restock.")
                elif trip is None or label not in trip["_Vehicle"]:
                    errs.append(f"Package {label} is not on Retailer Delivery {trip['Id'] if trip else ''}; it cannot be removed.")
                else:
                    ops.append({"remove": True, "PackageLabel": label})
                continue
            package = self._usable_package(lic, label, errs)
            if package is None:
                continue
            raw_quantity, raw_unit, raw_price = field_ci(p, "Quantity"), field_ci(p, "UnitOfMeasure"), field_ci(p, "TotalPrice")
            quantity, unit, price = _decimal(raw_quantity), _unit(raw_unit), _decimal(raw_price)
            when = self._local_field(p, "DateTime", errs, required=False)
            if quantity is None or quantity <= 0:
                errs.append(f"Quantity for package {label} must be greater than zero.")
                continue
            if unit is None:
                errs.append(f"Unit of measure '{raw_unit}' is not valid.")
                continue
            in_package_unit = convert(quantity, unit, package["UnitOfMeasureName"])
            if in_package_unit is None:
                errs.append(f"Unit of measure {unit} cannot be used for package {label} ({package['UnitOfMeasureName']}).")
                continue
            if raw_price is None and flags["RetailerDeliveryRequirePrice"]:
                errs.append(f"TotalPrice is required for package {label}.")
                continue
            if raw_price is not None and (price is None or price < 0):
                errs.append(f"TotalPrice for package {label} must be zero or more.")
                continue
            shop = self._shop_quantity(label)
            if in_package_unit > shop:
                errs.append(f"Package {label} does not have enough quantity "
                            f"({dumps(shop)} {package['UnitOfMeasureName']} in the shop).")
                continue
            if not flags["RetailerDeliveryAllowPartialPackages"] and in_package_unit != shop:
                errs.append(f"Package {label} must be taken whole: {dumps(shop)} {package['UnitOfMeasureName']} "
                            f"(this facility does not allow partial packages on retailer deliveries).")
                continue
            ops.append({"remove": False, "PackageLabel": label, "Quantity": quantity, "UnitOfMeasure": unit,
                        "TotalPrice": price, "DateTime": when, "_PackageQuantity": in_package_unit})
        return ops

    def _apply_loads(self, trip: dict[str, Any], ops: list[dict[str, Any]], now: dt.datetime) -> None:
        vehicle = trip["_Vehicle"]
        for op in ops:  # removals first: what is left of them goes back to the shop
            if op["remove"]:
                del vehicle[op["PackageLabel"]]
        for op in ops:
            if op["remove"]:
                continue
            entry = vehicle.get(op["PackageLabel"])
            if entry is None:
                vehicle[op["PackageLabel"]] = {k: op[k] for k in ("DateTime", "PackageLabel", "Quantity", "UnitOfMeasure",
                                                                  "TotalPrice", "_PackageQuantity")}
                continue
            entry["Quantity"] = entry["Quantity"] + convert(op["Quantity"], op["UnitOfMeasure"], entry["UnitOfMeasure"])
            entry["_PackageQuantity"] = entry["_PackageQuantity"] + op["_PackageQuantity"]
            if op["TotalPrice"] is not None:
                entry["TotalPrice"] = (entry["TotalPrice"] or Decimal(0)) + op["TotalPrice"]
            entry["DateTime"] = op["DateTime"] or entry["DateTime"]
        self._mark_vehicles([op["PackageLabel"] for op in ops], now)

    def _trip_create_row(self, lic: str, item: Any, errs: list[str], now: dt.datetime, *,
                         by: str = "Independent Integrator", editing: bool = False) -> Optional[int]:
        old = None
        if editing:  # PUT /sales/v2/deliveries/retailer: the full new content, while it has not departed
            raw_id = field_ci(item, "Id")
            old = self._trips.get(self._int_id(raw_id))
            if old is None or old["_License"] != lic:
                errs.append(f"Retailer Delivery Id {raw_id} was not found.")
                return None
            if old["RetailerDeliveryState"] != "Created":
                errs.append(f"Retailer Delivery {old['Id']} {self._state_words(old)} and cannot be edited.")
                return None
        if not self._flags(lic)["RetailerDelivery"]:
            errs.append("This facility is not permitted to make retailer deliveries.")
            return None
        when = self._local_field(item, "DateTime", errs)
        driver = self._driver_checks(item, errs)
        departure = self._local_field(item, "EstimatedDepartureDateTime", errs)
        vehicle_before = None
        if old is not None:  # its own load is the shop's again while the new one is checked
            vehicle_before, old["_Vehicle"] = old["_Vehicle"], {}
        ops = self._loads(lic, field_ci(item, "Packages"), errs, None, restock=False)
        if errs:
            if old is not None:
                old["_Vehicle"] = vehicle_before
            return None
        tid = old["Id"] if old is not None else next(self._trip_ids)
        trip = {
            "Id": tid, "RetailerDeliveryNumber": old["RetailerDeliveryNumber"] if old else f"{tid:010d}",
            "FacilityLicenseNumber": lic, "FacilityName": self._facilities[lic].name, "DateTime": when, **driver,
            "VehicleInfo": f"{driver['VehicleMake']} {driver['VehicleModel']} ({driver['VehicleLicensePlateNumber']})",
            "Direction": None, "EstimatedDepartureDateTime": departure, "ActualDepartureDateTime": None,
            "RestockDateTime": old["RestockDateTime"] if old else None, "AcceptedDateTime": None,
            "CompletedDateTime": None, "RetailerDeliveryState": "Created", "AllowFullEdit": True,
            "Leg": old["Leg"] if old else 1, "VoidedDate": None,
            "RecordedDateTime": old["RecordedDateTime"] if old else now, "RecordedByUserName": by, "LastModified": now,
            "_License": lic, "_Vehicle": {}, "_Destinations": [], "_EndPackages": [],
            "_Steps": (old["_Steps"] if old else []) + [{"Step": "update" if old else "create", "At": now, "By": by}],
        }
        self._trips[tid] = trip
        self._apply_loads(trip, ops, now)
        if vehicle_before:
            self._mark_vehicles(vehicle_before, now)
        return tid

    def _depart_row(self, lic: str, item: Any, errs: list[str], now: dt.datetime, *,
                    by: str = "Independent Integrator") -> Optional[int]:
        trip = self._trip(lic, item, errs)
        if trip is None:
            return None
        if trip["RetailerDeliveryState"] != "Created":
            errs.append(f"Retailer Delivery {trip['Id']} {self._state_words(trip)}; it cannot depart.")
            return None
        trip.update({"ActualDepartureDateTime": self._local_now(), "RetailerDeliveryState": "InTransit",
                     "AllowFullEdit": False, "LastModified": now})
        trip["_Steps"].append({"Step": "depart", "At": now, "By": by})
        return trip["Id"]

    def _trip_sale_row(self, lic: str, item: Any, errs: list[str], now: dt.datetime, *,
                       by: str = "Independent Integrator") -> Optional[int]:
        trip = self._trip(lic, item, errs)
        if trip is None:
            return None
        if trip["RetailerDeliveryState"] != "InTransit":
            errs.append(f"Retailer Delivery {trip['Id']} {self._state_words(trip)}; it cannot sell.")
            return None
        when = self._local_field(item, "SalesDateTime", errs)
        customer = self._customer_checks(item, self._flags(lic), errs)
        departure = self._local_field(item, "EstimatedDepartureDateTime", errs, required=False)
        arrival = self._local_field(item, "EstimatedArrivalDateTime", errs, required=False)
        lines = self._sale_lines(lic, item, errs, spec_first=False, vehicle=trip["_Vehicle"])
        for line in lines:
            entry = trip["_Vehicle"][line["PackageLabel"]]
            if line["_PackageQuantity"] > entry["_PackageQuantity"]:
                errs.append(f"Package {line['PackageLabel']} does not have enough quantity on the vehicle "
                            f"({dumps(entry['Quantity'])} {entry['UnitOfMeasure']} left).")
        if errs:
            return None
        for line in lines:
            entry = trip["_Vehicle"][line["PackageLabel"]]
            entry["_PackageQuantity"] -= line["_PackageQuantity"]
            entry["Quantity"] -= convert(line["Quantity"], line["UnitOfMeasure"], entry["UnitOfMeasure"])
            self._move(line["PackageLabel"], -line["_PackageQuantity"], now)
        sale_id = next(self._destination_ids)
        trip["_Destinations"].append({
            "Id": sale_id, "SalesDateTime": when, **customer, "EstimatedDepartureDateTime": departure,
            "EstimatedArrivalDateTime": arrival, "Transactions": lines, "RecordedDateTime": now,
        })
        trip["LastModified"] = now
        trip["_Steps"].append({"Step": "sale", "At": now, "By": by, "SaleId": sale_id})
        return sale_id

    def _restock_row(self, lic: str, item: Any, errs: list[str], now: dt.datetime, *,
                     by: str = "Independent Integrator") -> Optional[int]:
        trip = self._trip(lic, item, errs)
        if trip is None:
            return None
        if trip["RetailerDeliveryState"] not in self._ACTIVE_TRIP:
            errs.append(f"Retailer Delivery {trip['Id']} {self._state_words(trip)}; it cannot be restocked.")
            return None
        when = self._local_field(item, "DateTime", errs)
        departure = self._local_field(item, "EstimatedDepartureDateTime", errs, required=False)
        ops = self._loads(lic, field_ci(item, "Packages"), errs, trip, restock=True)
        if errs:
            return None
        self._apply_loads(trip, ops, now)
        trip.update({"RestockDateTime": when, "Leg": trip["Leg"] + 1, "LastModified": now})
        if departure is not None:
            trip["EstimatedDepartureDateTime"] = departure
        trip["_Steps"].append({"Step": "restock", "At": now, "By": by})
        return trip["Id"]

    def _end_row(self, lic: str, item: Any, errs: list[str], now: dt.datetime, *,
                 by: str = "Independent Integrator") -> Optional[int]:
        trip = self._trip(lic, item, errs)
        if trip is None:
            return None
        if trip["RetailerDeliveryState"] != "InTransit":
            errs.append(f"Retailer Delivery {trip['Id']} {self._state_words(trip)}; it cannot end.")
            return None
        arrival = self._local_field(item, "ActualArrivalDateTime", errs)
        counts = field_ci(item, "Packages")
        counts = [] if counts is None else counts
        if not isinstance(counts, list) or not all(isinstance(c, dict) for c in counts):
            errs.append("Packages must be a list of {Label, EndQuantity, EndUnitOfMeasure}.")
            counts = []
        vehicle = trip["_Vehicle"]
        seen, ended = set(), []
        for c in counts:
            label = field_ci(c, "Label")
            if label in seen:
                errs.append(f"Package {label} is listed more than once.")
                continue
            seen.add(label)
            entry = vehicle.get(label)
            if entry is None:
                errs.append(f"Package {label} is not on Retailer Delivery {trip['Id']}.")
                continue
            raw_quantity, raw_unit = field_ci(c, "EndQuantity"), field_ci(c, "EndUnitOfMeasure")
            quantity, unit = _decimal(raw_quantity), _unit(raw_unit)
            package_unit = self._packages[label]["UnitOfMeasureName"]
            in_package_unit = convert(quantity, unit, package_unit) if quantity is not None and unit else None
            if quantity is None or quantity < 0 or unit is None or in_package_unit is None:
                errs.append(f"Package {label}: EndQuantity and EndUnitOfMeasure must give a quantity in {package_unit} "
                            f"(got {raw_quantity!r} {raw_unit!r}).")
                continue
            if in_package_unit != entry["_PackageQuantity"]:
                errs.append(f"Package {label}: EndQuantity {dumps(quantity)} {unit} is not what the vehicle holds "
                            f"({dumps(entry['Quantity'])} {entry['UnitOfMeasure']}).")
                continue
            ended.append({"Label": label, "EndQuantity": quantity, "EndUnitOfMeasure": unit})
        for label, entry in vehicle.items():  # one sold out may be left out
            if label not in seen and entry["_PackageQuantity"] > 0:
                errs.append(f"Package {label} on Retailer Delivery {trip['Id']} is not counted "
                            f"({dumps(entry['Quantity'])} {entry['UnitOfMeasure']} on the vehicle).")
        if errs:
            return None
        labels = list(vehicle)
        trip["_Vehicle"] = {}  # its goods are the shop's again
        trip.update({"RetailerDeliveryState": "Completed", "CompletedDateTime": now, "ActualArrivalDateTime": arrival,
                     "LastModified": now, "_EndPackages": ended})
        trip["_Steps"].append({"Step": "end", "At": now, "By": by})
        self._mark_vehicles(labels, now)
        return trip["Id"]

    def _void_trip(self, trip: dict[str, Any], errs: list[str], now: dt.datetime, *,
                   by: str = "Independent Integrator") -> Optional[int]:
        if trip["RetailerDeliveryState"] != "Created":
            errs.append(f"Retailer Delivery {trip['Id']} {self._state_words(trip)} and cannot be voided.")
            return None
        labels = list(trip["_Vehicle"])
        trip["_Vehicle"] = {}
        trip.update({"RetailerDeliveryState": "Voided", "VoidedDate": now, "AllowFullEdit": False, "LastModified": now})
        trip["_Steps"].append({"Step": "void", "At": now, "By": by})
        self._mark_vehicles(labels, now)
        return trip["Id"]

    def _trip_public(self, t: dict[str, Any]) -> dict[str, Any]:
        vehicle = list(t["_Vehicle"].values())
        prices = [e["TotalPrice"] for e in vehicle if e["TotalPrice"] is not None]
        view = {k: t.get(k) for k in self._RETAILER_KEYS}
        view.update({
            "TotalPackages": len(vehicle), "TotalPrice": sum(prices, Decimal(0)) if prices else None,
            "TotalPriceSold": sum((l["TotalAmount"] for s in t["_Destinations"] for l in s["Transactions"]), Decimal(0)),
            "Packages": [{k: e[k] for k in ("DateTime", "PackageLabel", "Quantity", "UnitOfMeasure", "TotalPrice")}
                         for e in vehicle],
            "Destinations": [{k: v for k, v in s.items() if k != "RecordedDateTime"} for s in t["_Destinations"]],
        })
        return self._out(view)

    # ---- the HTTP side

    def _rows(self, lic: str, body: Any, body_error: Optional[str], what: str,
              row: Callable[[str, Any, list[str], dt.datetime], Optional[int]]) \
            -> tuple[Optional[tuple[int, Any, dict[str, str], bool]], list[int]]:
        """A write's rows, applied in order; any refused row puts everything back (400 with every refusal)."""
        if body_error is not None or not isinstance(body, list):
            return (400, [{"row": 0, "message": f"The request body must be a JSON array of {what}."}], {}, False), []
        if len(body) > self.object_limit:
            return (413, {"Message": f"Request contains {len(body)} objects; the limit is {self.object_limit}."}, {}, False), []
        if not body:
            return (400, [{"row": 0, "message": f"No {what} were submitted."}], {}, False), []
        snapshot = self._snapshot()
        now = dt.datetime.now(dt.timezone.utc)
        errors, results = [], []
        for n, item in enumerate(body):
            errs: list[str] = []
            if not isinstance(item, dict):
                errs.append(f"Each of the {what} must be an object.")
            else:
                results.append(row(lic, item, errs, now))
            errors += [{"row": n, "message": m} for m in errs]
        if errors:
            self._restore(snapshot)
            return (400, errors, {}, False), []
        return None, results

    def _route_deliveries(self, method: str, rest: list[str], rest_l: list[str], q: dict[str, str], body: Any,
                          body_error: Optional[str], lic: Optional[str], accessible: set[str],
                          need_license: Callable, optional_license: Callable, paging: Callable, window: Callable):
        def created(what: str, row: Callable) -> tuple[int, Any, dict[str, str], bool]:
            refusal, ids = self._rows(lic, body, body_error, what, row)
            return refusal or (200, {"Ids": ids, "Warnings": None}, {}, True)

        def written(what: str, row: Callable) -> tuple[int, Any, dict[str, str], bool]:
            refusal, ids = self._rows(lic, body, body_error, what, row)
            return refusal or (200, self._write_answer(ids), {}, True)

        def listing(records: list[dict[str, Any]], public: Callable, *, sales_dates: bool, required: bool):
            number, size, bad = paging()
            if bad:
                return bad
            has_sales = sales_dates and any(k in q for k in ("salesdatestart", "salesdateend"))
            has_modified = any(k in q for k in ("lastmodifiedstart", "lastmodifiedend"))
            if has_sales and has_modified:
                return 400, {"Message": "Sales date and last modified filters cannot be combined."}, {}, False
            if required and not has_modified:
                return 400, {"Message": "lastModifiedStart and lastModifiedEnd are required."}, {}, False
            s_start = s_end = None
            if sales_dates:
                s_start, s_end, bad = window("salesdatestart", "salesdateend")
                if bad:
                    return bad
            m_start, m_end, bad = window("lastmodifiedstart", "lastmodifiedend")
            if bad:
                return bad
            found = []
            for r in sorted(records, key=lambda r: r["Id"]):
                if r["_License"] != lic:
                    continue
                if s_start is not None:
                    sold = dt.datetime.fromisoformat(r["SalesDateTime"]).replace(tzinfo=self.tz)
                    if not (s_start <= sold <= s_end):
                        continue
                if m_start is not None and not (m_start <= r["LastModified"] <= m_end):
                    continue
                found.append(public(r))
            return 200, self._envelope(found, number, size), {}, False

        def by_id(records: dict[int, dict[str, Any]], key: str, what: str):
            if not key.isdigit():
                return None, (404, {"Message": "Not found."}, {}, False)
            record = records.get(int(key))
            if method == "GET":
                if (bad := optional_license()):
                    return None, bad
                if record is None:
                    return None, (404, {"Message": f"{what} not found."}, {}, False)
                if record["_License"] not in ({lic} if lic else accessible):
                    return None, (401, None, {}, False)
                return record, None
            if method == "DELETE":
                if (bad := need_license()):
                    return None, bad
                if record is None:
                    return None, (404, {"Message": f"{what} not found."}, {}, False)
                if record["_License"] != lic:
                    return None, (401, None, {}, False)
                return record, None
            return None, (405, None, {"Allow": "GET, DELETE"}, False)

        def deleted(record: dict[str, Any], void: Callable) -> tuple[int, Any, dict[str, str], bool]:
            snapshot = self._snapshot()
            errs: list[str] = []
            void(record, errs, dt.datetime.now(dt.timezone.utc))
            if errs:
                self._restore(snapshot)
                return 400, [{"row": 0, "message": m} for m in errs], {}, False
            return 200, self._write_answer([record["Id"]]), {}, True

        # ---- retailer deliveries
        if rest_l[:1] == ["retailer"]:
            sub = rest_l[1:]
            if not sub:
                if method not in ("POST", "PUT"):
                    return 405, None, {"Allow": "POST, PUT"}, False
                if (bad := need_license()):
                    return bad
                if method == "POST":
                    return created("retailer deliveries", self._trip_create_row)
                return written("retailer deliveries", lambda l, i, e, n: self._trip_create_row(l, i, e, n, editing=True))
            if sub in (["active"], ["inactive"]):
                if method != "GET":
                    return 405, None, {"Allow": "GET"}, False
                if (bad := need_license()):
                    return bad
                active = sub[0] == "active"
                records = [t for t in self._trips.values() if (t["RetailerDeliveryState"] in self._ACTIVE_TRIP) == active]
                return listing(records, self._trip_public, sales_dates=False,
                               required=self.retailer_list_window == "required")
            steps = {"depart": ("departures", self._depart_row, False), "sale": ("sales", self._trip_sale_row, True),
                     "restock": ("restocks", self._restock_row, False), "end": ("ends", self._end_row, False)}
            if len(sub) == 1 and sub[0] in steps:
                if method != "POST":
                    return 405, None, {"Allow": "POST"}, False
                if (bad := need_license()):
                    return bad
                what, row, creates = steps[sub[0]]
                return created(what, row) if creates else written(what, row)
            if len(sub) == 1:
                trip, bad = by_id(self._trips, sub[0], "Retailer Delivery")
                if bad:
                    return bad
                if method == "GET":
                    return 200, self._trip_public(trip), {}, False
                return deleted(trip, self._void_trip)
            return 404, {"Message": "No HTTP resource was found that matches the request URI."}, {}, False

        # ---- sales deliveries
        if not rest_l:
            if method not in ("POST", "PUT"):
                return 405, None, {"Allow": "POST, PUT"}, False
            if (bad := need_license()):
                return bad
            if method == "POST":
                return created("sales deliveries", lambda l, i, e, n: self._sales_delivery_row(l, i, e, n, editing=False))
            return written("sales deliveries", lambda l, i, e, n: self._sales_delivery_row(l, i, e, n, editing=True))
        if rest_l == ["complete"]:
            if method != "PUT":
                return 405, None, {"Allow": "PUT"}, False
            if (bad := need_license()):
                return bad
            return written("sales delivery completions", self._complete_row)
        if rest_l[:1] == ["hub"] and len(rest_l) <= 2:
            step = rest_l[1] if len(rest_l) == 2 else "hub"
            if step not in ("hub", "accept", "depart", "verifyid"):
                return 404, {"Message": "No HTTP resource was found that matches the request URI."}, {}, False
            if method != "PUT":
                return 405, None, {"Allow": "PUT"}, False
            if (bad := need_license()):
                return bad
            return written("hub deliveries", lambda l, i, e, n: self._hub_row(l, i, e, n, step=step))
        if rest_l in (["active"], ["inactive"]):
            if method != "GET":
                return 405, None, {"Allow": "GET"}, False
            if (bad := need_license()):
                return bad
            active = rest_l[0] == "active"
            records = [d for d in self._deliveries.values() if (d["SalesDeliveryState"] == "InTransit") == active]
            return listing(records, self._delivery_public, sales_dates=True, required=False)
        if rest_l == ["returnreasons"]:
            if method != "GET":
                return 405, None, {"Allow": "GET"}, False
            if (bad := need_license()):
                return bad
            number, size, bad = paging()
            if bad:
                return bad
            return 200, self._envelope(copy.deepcopy(self._return_reasons), number, size), {}, False
        if len(rest_l) == 1:
            delivery, bad = by_id(self._deliveries, rest[0], "Sales Delivery")
            if bad:
                return bad
            if method == "GET":
                return 200, self._delivery_public(delivery), {}, False
            return deleted(delivery, self._void_delivery)
        return 404, {"Message": "No HTTP resource was found that matches the request URI."}, {}, False

    # ---- GET rate limits (doc: 50/s per facility, 150/s per integrator, 10 concurrent per facility)

    def _admit_get(self, lic: Optional[str]) -> bool:
        now = time.monotonic()
        with self._lock:
            for key, limit in ((f"facility:{lic}" if lic else None, self.get_rate_per_facility),
                               ("integrator", self.get_rate_per_integrator)):
                if key is None:
                    continue
                times = [t for t in self._get_times.get(key, []) if now - t < 1.0]
                self._get_times[key] = times
                if len(times) >= limit:
                    return False
            if lic and self._gets_in_flight.get(lic, 0) >= self.max_concurrent_gets_per_facility:
                return False
            for key in ((f"facility:{lic}",) if lic else ()) + ("integrator",):
                self._get_times.setdefault(key, []).append(now)
            if lic:
                self._gets_in_flight[lic] = self._gets_in_flight.get(lic, 0) + 1
                self.max_gets_in_flight = max(self.max_gets_in_flight, self._gets_in_flight[lic])
        return True

    def _release_get(self, lic: Optional[str]) -> None:
        if lic:
            with self._lock:
                self._gets_in_flight[lic] = max(0, self._gets_in_flight.get(lic, 0) - 1)

    def _record(self, request: Request) -> None:
        with self._lock:
            self._requests.append(request)


# --------------------------------------------------------------------------------------------------
# HTTP

_HTML_503 = ("<!DOCTYPE html><html><head><title>503 Service Unavailable</title></head><body>"
             "<h1>Service Unavailable</h1><p>The server is temporarily unable to service your request.</p>"
             "</body></html>")
_ASSEMBLY = ("Could not load file or assembly 'Metrc.Data.Repository, Version=1.0.0.0, Culture=neutral, "
             "PublicKeyToken=null' or one of its dependencies. The system cannot find the file specified.")


class _QuietServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that went away (Till killed with SIGKILL mid-request, say) is part of the tests.
        pass


def _make_handler(metrc: IndependentMetrc) -> type:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as Metrc's front end does
        server_version = "Microsoft-IIS/10.0"
        sys_version = ""

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def _read_body(self) -> bytes:
            if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                chunks = []
                while True:
                    size_line = self.rfile.readline()
                    size = int(size_line.split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        break
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
                return b"".join(chunks)
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _auth(self) -> Optional[tuple[str, str]]:
            header = self.headers.get("Authorization") or ""
            if not header.lower().startswith("basic "):
                return None
            try:
                decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
            except Exception:
                return None
            if ":" not in decoded:
                return None
            vendor, user = decoded.split(":", 1)
            return vendor, user

        def _send(self, status: int, value: Any, headers: dict[str, str]) -> None:
            if value is None:
                payload, ctype = b"", None
            elif isinstance(value, bytes):
                payload, ctype = value, "application/octet-stream"
            elif isinstance(value, str):
                payload, ctype = value.encode("utf-8"), "text/html; charset=utf-8"
            else:
                if metrc.casing == "camel":
                    value = camel(value)
                payload, ctype = dumps(value).encode("utf-8"), "application/json; charset=utf-8"
            self.send_response(status)
            if ctype:
                self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(payload)))
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            if payload:
                self.wfile.write(payload)

        def _drop(self) -> None:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

        def _serve(self) -> None:
            method = self.command
            raw_target = self.path
            split = urllib.parse.urlsplit(raw_target)
            path = urllib.parse.unquote(split.path)  # '+' in a path stays '+'
            query = urllib.parse.parse_qs(split.query, keep_blank_values=True)  # '+' → space
            body_bytes = self._read_body()
            body, body_error = None, None
            if body_bytes:
                try:
                    body = loads(body_bytes)
                except ValueError as error:
                    body_error = str(error)
            auth = self._auth()
            lic = next((v[-1] for k, v in query.items() if k.lower() == "licensenumber"), None)
            record = Request(at=time.time(), method=method, path=path, raw_target=raw_target, query=query,
                             raw_query=split.query, headers={k: v for k, v in self.headers.items()},
                             body=body_bytes, json=body, auth_ok=auth is not None and auth in metrc._access,
                             license=lic)
            metrc._record(record)

            # GET limits first (doc: per facility and per integrator; at most 10 concurrent per facility)
            if method == "GET" and not metrc._admit_get(lic):
                headers = {"Retry-After": metrc.rate_limit_retry_after} if metrc.rate_limit_retry_after else {}
                record.status = 429
                record.fault = "rate limit"
                self._send(429, {"Message": "Too Many Requests"}, headers)
                return
            try:
                self._serve_admitted(record, method, path, query, body, body_error, auth)
            finally:
                if method == "GET":
                    metrc._release_get(lic)

        def _serve_admitted(self, record: Request, method: str, path: str, query: dict, body: Any,
                            body_error: Optional[str], auth: Optional[tuple[str, str]]) -> None:
            faults = metrc._take_faults(method, path)
            for fault in faults:
                if fault.kind == "latency":
                    time.sleep(fault.seconds)
            action = next((f for f in faults if f.kind != "latency"), None)
            if action is not None:
                record.fault = f"{action.kind} {action.status}" if action.kind.startswith("status") else action.kind
            if action is not None and action.kind in ("status", "status_after_commit"):
                if action.kind == "status_after_commit":
                    record.applied = metrc.handle(method, path, query, body, body_error, auth)[3]
                headers = {"Retry-After": action.retry_after} if action.retry_after is not None else {}
                value: Any
                if action.body == "html":
                    value = _HTML_503.replace("503 Service Unavailable", f"{action.status} Error")
                elif action.body == "assembly":
                    value = {"Message": _ASSEMBLY}
                elif action.body == "message":
                    value = {"Message": "An error has occurred." if action.status != 429 else "Too Many Requests"}
                else:
                    value = None
                record.status = action.status
                self._send(action.status, value, headers)
                return
            if action is not None and action.kind == "drop_before_commit":
                record.status = None
                self._drop()
                return
            if action is not None and action.kind == "hold_then_apply":
                # Nothing is read from or written to the connection while holding, so a client that gives
                # up or dies meanwhile changes nothing here: the request is applied all the same.
                time.sleep(action.seconds)
            status, value, headers, applied = metrc.handle(method, path, query, body, body_error, auth)
            record.applied = applied
            if action is not None and action.kind == "drop_after_commit":
                record.status = None
                self._drop()
                return
            if action is not None and action.kind == "empty_200" and status == 200:
                value = None
            if (status == 400 and metrc.error_row_casing == "pascal" and isinstance(value, list)
                    and metrc.casing == "pascal"):
                value = [{"Row": v["row"], "Message": v["message"]} for v in value]
            record.status = status
            if action is not None and action.kind == "hold_then_apply":
                try:
                    self._send(status, value, headers)
                    self.wfile.flush()
                except OSError as error:  # BrokenPipeError, ConnectionResetError: the client has gone
                    record.answer_error = f"{type(error).__name__}: {error}"
                    self.close_connection = True
                    return
            else:
                self._send(status, value, headers)
            if metrc.close_after_answer:
                self.close_connection = True  # no "Connection: close" warning, as an idle timeout would

        def do_GET(self) -> None:
            self._serve()

        def do_POST(self) -> None:
            self._serve()

        def do_PUT(self) -> None:
            self._serve()

        def do_DELETE(self) -> None:
            self._serve()

    return Handler
