#!/usr/bin/env python3
"""Writes the delivery and trip operations into Sources/TillAPI/openapi.json (idempotent: run it again after
editing). The document stays the contract; this only saves writing thirteen operations by hand."""
import json
import pathlib

PATH = pathlib.Path(__file__).resolve().parent.parent / "Sources/TillAPI/openapi.json"
d = json.loads(PATH.read_text())
S = d["components"]["schemas"]
ref = lambda name: {"$ref": f"#/components/schemas/{name}"}
obj = lambda required, props, desc=None: dict({"type": "object", "additionalProperties": False, "required": required,
                                               "properties": props}, **({"description": desc} if desc else {}))
string = {"type": "string"}
int64 = {"type": "integer", "format": "int64"}


def error(status_desc, codes):
    return {"description": f"{status_desc} Codes: " + ", ".join(f"`{c}`" for c in codes) + ".",
            "content": {"application/json": {"schema": {"allOf": [ref("Error"), {"type": "object", "properties": {
                "error": {"type": "object", "properties": {"code": {"enum": codes}}}}}]}}}}


def ok(desc, schema):
    return {"description": desc, "content": {"application/json": {"schema": ref(schema)}}}


AUTH = {"401": error("No bearer token, or the token is unknown or revoked.", ["unauthorized", "invalid_token"]),
        "429": error("Too many requests without a valid token on this connection.", ["too_many_failed_attempts"]),
        "503": error("Till's local database could not be used. Nothing was recorded.",
                     ["store_unavailable", "storage_full", "storage_read_only"])}


def forbidden(roles):
    return error(f"The terminal's role may not do this (only {', '.join(roles)}).", ["forbidden"])


def op(operation_id, tag, summary, description, roles, responses, body=None, id_name=None, extra_400=()):
    o = {"operationId": operation_id, "tags": [tag], "summary": summary,
         "description": description + f"\n\nRoles: {', '.join(roles)}.", "x-till-roles": roles}
    if id_name:
        o["parameters"] = [{"name": "id", "in": "path", "required": True, "description": f"Till's id of the {id_name}.",
                            "schema": int64}]
    if body:
        o["requestBody"] = {"required": True, "description": "At most 262144 bytes.",
                            "content": {"application/json": {"schema": ref(body)}}}
    r = dict(responses)
    r.update({k: v for k, v in AUTH.items()})
    r["403"] = forbidden(roles)
    if body:
        r["413"] = error("The body is larger than 262144 bytes.", ["payload_too_large"])
    o["responses"] = dict(sorted(r.items()))
    return o


READ = ["empty_body", "malformed_json", "invalid_request", "unknown_field", "missing_field", "invalid_field",
        "invalid_customer_type"]
SALE_SHAPE = ["invalid_client_sale_id", "no_lines", "too_many_lines", "invalid_package_label", "invalid_quantity",
              "invalid_amount", "unknown_unit", "patient_license_required", "caregiver_license_required"]
STOCK = ["unknown_package", "package_inactive", "package_on_hold", "lab_test_not_passed", "unknown_package_unit",
         "incompatible_unit", "inexact_unit_conversion", "insufficient_quantity"]
PATIENT_404 = ["patient_not_found", "caregiver_not_found"]
PATIENT_422 = ["customer_type_not_allowed", "patient_inactive",
               "patient_expired", "caregiver_inactive", "caregiver_not_linked", "unknown_unit_weight",
               "allowance_exceeded"]
PATIENT_503 = ["patient_status_stale", "metrc_unavailable", "metrc_unauthorized"]
DELIVERY_ROLES = ["manager", "register"]
TRIP_ROLES = ["driver", "manager"]

# ---------------------------------------------------------------- schemas
S["Recipient"] = obj([], {k: string for k in ["name", "street1", "street2", "city", "county", "state", "postalCode", "phone"]},
                     "Where a delivery goes. Which fields a facility may or must give is its license's (Metrc's "
                     "SalesDeliveryRequire… and SalesDeliveryAllow… flags).")
S["Driver"] = obj(["employeeId", "name", "licenseNumber"], {"employeeId": string, "name": string, "licenseNumber": string},
                  "The driver: employee id, name and driver's licence number.")
S["Vehicle"] = obj(["make", "model", "plate"], {"make": string, "model": string, "plate": string})
S["DeliveryLine"] = obj(["packageLabel", "quantity", "unit", "totalAmount"],
                        {"packageLabel": {"type": "string", "minLength": 1}, "quantity": ref("Quantity"),
                         "unit": ref("UnitOfMeasure"), "totalAmount": ref("Money")})
S["Instant"] = {"type": "string", "format": "date-time",
                "description": "An instant in ISO 8601 with its offset or `Z` (`2026-12-05T14:00:00-08:00`); Metrc gets it "
                               "as the facility's local wall clock."}
S["DeliveryRequest"] = obj(
    ["clientDeliveryId", "customerType", "recipient", "driver", "vehicle", "estimatedDeparture", "estimatedArrival", "lines"],
    {"clientDeliveryId": {"type": "string", "minLength": 1, "maxLength": 64, "pattern": "^[A-Za-z0-9_.:-]+$",
                          "description": "The register's id for this delivery: the same id again is a retry."},
     "customerType": ref("CustomerType"), "patientLicenseNumber": string, "caregiverLicenseNumber": string,
     "consumerId": string, "recipient": ref("Recipient"), "driver": ref("Driver"), "vehicle": ref("Vehicle"),
     "plannedRoute": string, "estimatedDeparture": ref("Instant"), "estimatedArrival": ref("Instant"),
     "lines": {"type": "array", "minItems": 1, "maxItems": 100, "items": ref("DeliveryLine")}})
S["DeliveryReturned"] = obj(["label", "quantity", "unit", "reason"],
                            {"label": string, "quantity": ref("Quantity"), "unit": ref("UnitOfMeasure"),
                             "reason": {"type": "string", "description": "One of Metrc's GET /sales/v2/deliveries/returnreasons."},
                             "note": {"type": "string", "description": "Required when the reason's RequiresNote is true."},
                             "disposition": ref("ReturnDisposition")})
S["DeliveryCompletionRequest"] = obj(
    ["actualArrival"],
    {"actualArrival": ref("Instant"), "accepted": {"type": "array", "items": string},
     "returned": {"type": "array", "items": ref("DeliveryReturned")}},
    "Every package label of the delivery exactly once, in `accepted` or `returned`.")
S["DeliveryStep"] = obj(["step", "status", "at"], {
    "step": {"type": "string", "enum": ["create", "update", "complete", "void", "waste", "depart", "sale", "restock", "end"]},
    "status": {"type": "string", "enum": ["reported", "pending", "in_doubt", "refused"],
               "description": "`in_doubt`: sent, Metrc's answer never came; Till looks before sending again."},
    "at": ref("Timestamp"), "reportedAt": ref("Timestamp"),
    "messages": {"type": "array", "items": string, "description": "Metrc's words, when it refused the step."}})
S["Delivery"] = obj(
    ["id", "clientDeliveryId", "status", "businessDate", "salesDateTime", "customerType", "recipient", "driver", "vehicle",
     "estimatedDeparture", "estimatedArrival", "lines", "totalAmount", "reported", "steps"],
    {"id": int64, "clientDeliveryId": string,
     "status": {"type": "string", "enum": ["open", "completed", "voided", "frozen"],
                "description": "`frozen`: Metrc shows a step Till did not take (made on Metrc's website); Till sends nothing more for it."},
     "frozenReason": string, "metrcDeliveryId": int64, "businessDate": ref("BusinessDate"),
     "salesDateTime": ref("LocalDateTime"), "customerType": ref("CustomerType"), "patientLicenseNumber": string,
     "consumerId": string, "recipient": ref("Recipient"), "driver": ref("Driver"), "vehicle": ref("Vehicle"),
     "plannedRoute": string, "estimatedDeparture": ref("Timestamp"), "estimatedArrival": ref("Timestamp"),
     "lines": {"type": "array", "items": ref("DeliveryLine")}, "totalAmount": ref("Money"),
     "actualArrival": ref("Timestamp"), "accepted": {"type": "array", "items": string},
     "returned": {"type": "array", "items": ref("DeliveryReturned")},
     "reported": {"type": "boolean", "description": "Metrc holds every step."},
     "steps": {"type": "array", "items": ref("DeliveryStep")}})
S["DeliveryList"] = obj(["date", "count", "deliveries"], {"date": ref("BusinessDate"), "count": {"type": "integer"},
                                                         "deliveries": {"type": "array", "items": ref("Delivery")}})
S["TripLoadLine"] = obj(["packageLabel", "quantity", "unit"],
                        {"packageLabel": {"type": "string", "minLength": 1}, "quantity": ref("Quantity"),
                         "unit": ref("UnitOfMeasure"),
                         "totalPrice": dict(ref("Money"), description="Required when the license's RetailerDeliveryRequirePrice is true.")})
S["TripRequest"] = obj(["clientTripId", "driver", "vehicle", "estimatedDeparture", "load"],
                       {"clientTripId": {"type": "string", "minLength": 1, "maxLength": 64, "pattern": "^[A-Za-z0-9_.:-]+$"},
                        "driver": ref("Driver"), "vehicle": ref("Vehicle"), "estimatedDeparture": ref("Instant"),
                        "load": {"type": "array", "minItems": 1, "items": ref("TripLoadLine")}})
S["TripSaleRequest"] = obj(["clientSaleId", "customerType", "recipient", "lines"],
                           {"clientSaleId": {"type": "string", "minLength": 1, "maxLength": 64, "pattern": "^[A-Za-z0-9_.:-]+$"},
                            "customerType": ref("CustomerType"), "patientLicenseNumber": string,
                            "caregiverLicenseNumber": string, "consumerId": string, "recipient": ref("Recipient"),
                            "lines": {"type": "array", "minItems": 1, "maxItems": 100, "items": ref("DeliveryLine")}})
S["RestockRequest"] = obj(["clientRestockId"],
                          {"clientRestockId": {"type": "string", "minLength": 1, "maxLength": 64, "pattern": "^[A-Za-z0-9_.:-]+$"},
                           "add": {"type": "array", "items": ref("TripLoadLine")},
                           "remove": {"type": "array", "items": string,
                                      "description": "Labels taken off the vehicle (Metrc's RemoveCurrentPackage): what is left of each goes back to the shop."}})
S["TripEndRequest"] = obj(["counts"], {
    "actualArrival": dict(ref("Instant"), description="Now when omitted."),
    "counts": {"type": "array", "items": obj(["packageLabel", "quantity", "unit"],
                                             {"packageLabel": string, "quantity": {"type": "number", "minimum": 0},
                                              "unit": ref("UnitOfMeasure")}),
               "description": "The driver's count of every package on the vehicle."}})
S["Trip"] = obj(
    ["id", "clientTripId", "status", "businessDate", "dateTime", "driver", "vehicle", "estimatedDeparture", "load", "stock",
     "events", "reported", "steps"],
    {"id": int64, "clientTripId": string,
     "status": {"type": "string", "enum": ["created", "departed", "ended", "voided", "frozen"]},
     "frozenReason": string, "metrcTripId": int64, "businessDate": ref("BusinessDate"), "dateTime": ref("LocalDateTime"),
     "driver": ref("Driver"), "vehicle": ref("Vehicle"), "estimatedDeparture": ref("LocalDateTime"),
     "load": {"type": "array", "items": ref("TripLoadLine")},
     "stock": {"type": "array", "description": "What the vehicle holds now, in each package's unit.",
               "items": obj(["packageLabel", "quantity", "unit"], {"packageLabel": string, "quantity": {"type": "number", "minimum": 0},
                                                                   "unit": string})},
     "events": {"type": "array", "items": obj(["id", "kind", "clientId", "at", "totalAmount"], {
         "id": int64, "kind": {"type": "string", "enum": ["sale", "restock"]}, "clientId": string, "at": ref("Timestamp"),
         "totalAmount": ref("Money")})},
     "reported": {"type": "boolean"}, "steps": {"type": "array", "items": ref("DeliveryStep")}})
S["TripSale"] = obj(["saleId", "clientSaleId", "totalAmount", "status", "trip"],
                    {"saleId": int64, "clientSaleId": string, "totalAmount": ref("Money"),
                     "status": {"type": "string", "enum": ["reported", "pending_report"]}, "trip": ref("Trip")})

# ---------------------------------------------------------------- operations
P = d["paths"]
created = lambda what, schema: {"201": ok(f"Recorded, and Metrc holds it.", schema),
                                "202": ok(f"Recorded; Metrc has not confirmed it yet and Till's reporter goes on by itself.", schema)}
metrc_422 = ["metrc_rejected"]
P["/v1/deliveries"] = {
    "post": op("postDelivery", "deliveries", "Create a sales delivery",
               "Checks the delivery like a sale (packages, units, stock, patients and their allowance) and by the facility's "
               "delivery flags, takes its stock, journals it and posts it to Metrc (POST /sales/v2/deliveries), waiting up to "
               "TILL_REPORT_DEADLINE_MS. Never also reported as a receipt. Idempotent on clientDeliveryId; another body with "
               "it is 409 `client_delivery_id_reused`. Metrc refusing it while the register waits undoes it (422 `metrc_rejected`).",
               DELIVERY_ROLES, dict(created("delivery", "Delivery"), **{
                   "400": error("The request cannot be read. Nothing was recorded.", READ + SALE_SHAPE + ["invalid_client_id", "missing_field", "invalid_times"]),
                   "404": error("Metrc does not know the patient or caregiver.", PATIENT_404),
                   "409": error("The clientDeliveryId was used for another delivery.", ["client_delivery_id_reused"]),
                   "422": error("Refused by the facility's license, Till's rules or Metrc. Nothing was recorded.",
                                ["delivery_not_allowed", "field_required", "field_not_allowed"] + STOCK + PATIENT_422 + metrc_422),
                   "503": error("Till's database, or Metrc for a patient's status, could not answer. Nothing was recorded.",
                                ["store_unavailable", "storage_full", "storage_read_only"] + PATIENT_503)}),
               body="DeliveryRequest"),
    "get": op("listDeliveries", "deliveries", "A business day's sales deliveries",
              "Deliveries created on the facility-local day (`?date=YYYY-MM-DD`, today by default).", DELIVERY_ROLES,
              {"200": ok("The day's deliveries.", "DeliveryList"),
               "400": error("date is not YYYY-MM-DD.", ["invalid_date"])}),
}
P["/v1/deliveries"]["get"]["parameters"] = [{"name": "date", "in": "query", "required": False, "schema": ref("BusinessDate")}]
did = "delivery"
P["/v1/deliveries/{id}"] = {
    "get": op("getDelivery", "deliveries", "One sales delivery, with each step's report status", "", DELIVERY_ROLES,
              {"200": ok("The delivery.", "Delivery"), "400": error("id is not a whole number.", ["invalid_delivery_id"]),
               "404": error("No delivery has that id.", ["delivery_not_found"])}, id_name=did),
    "put": op("putDelivery", "deliveries", "Replace an open delivery's content",
              "The same body as its creation (same clientDeliveryId): its new full content, sent as PUT /sales/v2/deliveries. "
              "The old lines' stock comes back and the new lines' is taken.", DELIVERY_ROLES,
              {"200": ok("The delivery as it now stands.", "Delivery"),
               "400": error("The request cannot be read.", READ + SALE_SHAPE + ["invalid_delivery_id", "invalid_client_id",
                                                                                 "client_delivery_id_mismatch", "invalid_times"]),
               "404": error("No delivery has that id, or Metrc does not know the patient or caregiver.", ["delivery_not_found"] + PATIENT_404),
               "409": error("The delivery is completed, voided or frozen.", ["delivery_completed", "delivery_voided", "delivery_frozen"]),
               "422": error("Refused by the facility's license or Till's rules.",
                            ["delivery_not_allowed", "field_required", "field_not_allowed"] + STOCK + PATIENT_422),
               "503": error("Till's database, or Metrc for a patient's status, could not answer.",
                            ["store_unavailable", "storage_full", "storage_read_only"] + PATIENT_503)},
              body="DeliveryRequest", id_name=did),
    "delete": op("voidDelivery", "deliveries", "Void an open delivery",
                 "Its stock goes back on the shelf; Metrc gets DELETE /sales/v2/deliveries/{id}. A voided delivery answers as it stands.",
                 DELIVERY_ROLES,
                 {"200": ok("The delivery, voided.", "Delivery"), "400": error("id is not a whole number.", ["invalid_delivery_id"]),
                  "404": error("No delivery has that id.", ["delivery_not_found"]),
                  "409": error("The delivery is completed or frozen.", ["delivery_completed", "delivery_frozen"])}, id_name=did),
}
P["/v1/deliveries/{id}/complete"] = {
    "post": op("completeDelivery", "deliveries", "Complete a delivery: what was accepted and what came back",
               "Reported with PUT /sales/v2/deliveries/complete. Returned goods go by their disposition (default "
               "TILL_RETURN_DISPOSITION): `restock` back on the shelf, `quarantine` held, `waste` held and adjusted off Metrc's "
               "package. Asked again with the same body, the same answer.", DELIVERY_ROLES,
               {"200": ok("The delivery, completed.", "Delivery"),
                "400": error("The request cannot be read, or a reason is unknown or lacks its note.",
                             READ + ["invalid_delivery_id", "invalid_disposition", "unknown_return_reason", "note_required"]),
                "404": error("No delivery has that id.", ["delivery_not_found"]),
                "409": error("The delivery is voided, frozen, or completed otherwise.", ["delivery_completed", "delivery_voided", "delivery_frozen"]),
                "422": error("The completion does not account for the delivery. Nothing was recorded.",
                             ["labels_not_accounted", "invalid_return_quantity", "too_much_returned"]),
                "503": error("Till's database, or Metrc's return reasons, could not be read.",
                             ["store_unavailable", "storage_full", "storage_read_only", "metrc_unavailable"])},
               body="DeliveryCompletionRequest", id_name=did),
}
tid = "trip"
TRIP_ORDER = ["trip_not_departed", "trip_departed", "trip_ended", "trip_voided", "trip_frozen"]
P["/v1/trips"] = {
    "post": op("postTrip", "trips", "Create a vehicle trip (a retailer delivery) with its load",
               "The load moves from the shop's sellable stock to the vehicle's; Metrc gets POST /sales/v2/deliveries/retailer. "
               "Idempotent on clientTripId.", TRIP_ROLES,
               dict(created("trip", "Trip"), **{
                   "400": error("The request cannot be read.", READ + ["invalid_client_id", "missing_field", "no_lines",
                                                                      "duplicate_package", "invalid_quantity", "unknown_unit",
                                                                      "invalid_amount"]),
                   "409": error("The clientTripId was used for another trip.", ["client_trip_id_reused"]),
                   "422": error("Refused by the facility's license, Till's rules or Metrc. Nothing was recorded.",
                                ["trip_not_allowed", "price_required", "whole_package_required"] + STOCK + metrc_422)}),
               body="TripRequest"),
}
P["/v1/trips/{id}"] = {
    "get": op("getTrip", "trips", "One trip: the vehicle's live stock and each step's report status", "", TRIP_ROLES,
              {"200": ok("The trip.", "Trip"), "400": error("id is not a whole number.", ["invalid_trip_id"]),
               "404": error("No trip has that id.", ["trip_not_found"])}, id_name=tid),
    "delete": op("voidTrip", "trips", "Void a trip before it departs",
                 "Its load goes back to the shop; Metrc gets DELETE /sales/v2/deliveries/retailer/{id}.", TRIP_ROLES,
                 {"200": ok("The trip, voided.", "Trip"), "400": error("id is not a whole number.", ["invalid_trip_id"]),
                  "404": error("No trip has that id.", ["trip_not_found"]),
                  "409": error("The trip has departed, ended or is frozen.", TRIP_ORDER)}, id_name=tid),
}
step = lambda oid, summary, desc, body, extra400, extra422: {"post": op(
    oid, "trips", summary, desc, TRIP_ROLES,
    {"200": ok("The trip as it now stands.", "Trip"),
     "400": error("The request cannot be read.", READ + ["invalid_trip_id"] + extra400),
     "404": error("No trip has that id.", ["trip_not_found"]),
     "409": error("Metrc's order: not now.", TRIP_ORDER + (["client_id_reused"] if body == "RestockRequest" else [])),
     **({"422": error("Refused by Till's rules or the license. Nothing was recorded.", extra422)} if extra422 else {})},
    body=body, id_name=tid)}
P["/v1/trips/{id}/depart"] = step("departTrip", "The trip departs", "Metrc gets POST /sales/v2/deliveries/retailer/depart. "
                                  "The body is empty or `{}`. Departing again answers the trip as it stands.", None, [], [])
P["/v1/trips/{id}/restock"] = step("restockTrip", "Restock the vehicle mid-route: add packages, or swap one for another",
                                   "Metrc gets POST /sales/v2/deliveries/retailer/restock (removed packages with RemoveCurrentPackage). "
                                   "Idempotent on clientRestockId.", "RestockRequest",
                                   ["invalid_client_id", "no_lines", "duplicate_package", "invalid_quantity", "unknown_unit", "invalid_amount"],
                                   ["package_not_on_vehicle", "price_required", "whole_package_required", "trip_not_allowed"] + STOCK)
P["/v1/trips/{id}/end"] = step("endTrip", "End the trip with the driver's counts",
                               "Till computes each package's end quantity itself (loaded plus restocked minus sold minus removed) and "
                               "refuses a count that differs, naming the package; what is left goes back to the shop. Metrc gets "
                               "POST /sales/v2/deliveries/retailer/end.", "TripEndRequest", [], ["end_count_mismatch"])
sale = op("sellFromTrip", "trips", "A sale from the vehicle",
          "From the vehicle's stock, with the recipient; patients checked as at the counter. Metrc gets "
          "POST /sales/v2/deliveries/retailer/sale. Idempotent on clientSaleId within the trip.", TRIP_ROLES,
          dict(created("sale", "TripSale"), **{
              "400": error("The request cannot be read.", READ + SALE_SHAPE + ["invalid_trip_id"]),
              "404": error("No trip has that id, or Metrc does not know the patient or caregiver.", ["trip_not_found"] + PATIENT_404),
              "409": error("Metrc's order (no sale before the trip departs, none after it ends), or a reused clientSaleId.",
                           TRIP_ORDER + ["client_id_reused"]),
              "422": error("Refused by Till's rules or Metrc. Nothing was recorded.", STOCK + PATIENT_422 + metrc_422),
              "503": error("Till's database, or Metrc for a patient's status, could not answer.",
                           ["store_unavailable", "storage_full", "storage_read_only"] + PATIENT_503)}),
          body="TripSaleRequest", id_name=tid)
P["/v1/trips/{id}/sales"] = {"post": sale}
if not any(t["name"] == "deliveries" for t in d["tags"]):
    d["tags"] += [{"name": "deliveries", "description": "Sales deliveries: one order driven to one customer."},
                  {"name": "trips", "description": "Vehicle trips (Metrc's retailer deliveries): a vehicle that sells on the road."}]

# ---------------------------------------------------------------- codes, kinds, roles, alerts
codes = {
    "invalid_client_id": "A client id (clientDeliveryId, clientTripId, clientRestockId) is not 1 to 64 letters, digits, '-', '_', '.' or ':'. details.field.",
    "invalid_times": "estimatedArrival is before estimatedDeparture.",
    "delivery_not_allowed": "The facility's license does not allow deliveries to this customer type. details.customerType.",
    "field_required": "The facility's license requires this field on a delivery. details.field.",
    "field_not_allowed": "The facility's license does not allow this field on a delivery. details.field.",
    "client_delivery_id_reused": "The clientDeliveryId was used for a different delivery. details.deliveryId.",
    "client_delivery_id_mismatch": "An edit must keep the delivery's clientDeliveryId.",
    "invalid_delivery_id": "A delivery id is a positive whole number.",
    "delivery_not_found": "No delivery has that id.",
    "delivery_completed": "The delivery is completed: it cannot change or be voided.",
    "delivery_voided": "The delivery was voided.",
    "delivery_frozen": "Metrc shows a step Till did not take for this delivery; nothing more is sent for it.",
    "labels_not_accounted": "A completion must name every package of the delivery once, accepted or returned. details.missing, details.twice, details.unknown.",
    "invalid_return_quantity": "A returned quantity is not an exact, positive amount of its package's unit.",
    "too_much_returned": "More of a package came back than was delivered.",
    "trip_not_allowed": "The facility's license does not allow retailer (vehicle) deliveries.",
    "price_required": "The facility's license requires a totalPrice for every package loaded.",
    "whole_package_required": "The facility's license allows only whole packages on a vehicle.",
    "duplicate_package": "A package appears twice in a load, or is both added and removed.",
    "client_trip_id_reused": "The clientTripId was used for a different trip.",
    "client_id_reused": "The clientSaleId or clientRestockId was used on this trip for another request.",
    "invalid_trip_id": "A trip id is a positive whole number.",
    "trip_not_found": "No trip has that id.",
    "trip_not_departed": "The trip has not departed: no sale or end yet.",
    "trip_departed": "The trip has departed: it cannot depart again or be voided.",
    "trip_ended": "The trip has ended.",
    "trip_voided": "The trip was voided.",
    "trip_frozen": "Metrc shows a step Till did not take for this trip; nothing more is sent for it.",
    "package_not_on_vehicle": "A restock removes a package the vehicle does not hold.",
    "end_count_mismatch": "The driver's count of a package differs from what Till holds on the vehicle. details.packageLabel, details.expected, details.counted.",
}
E = S["ErrorCode"]
for code, text in codes.items():
    if code not in E["enum"]:
        E["enum"].append(code)
    E.setdefault("x-enum-descriptions", {})[code] = text
kinds = S["MetrcWriteKind"]
for kind in ["delivery.create", "delivery.update", "delivery.complete", "delivery.void", "trip.create", "trip.depart",
             "trip.sale", "trip.restock", "trip.end", "trip.void"]:
    if kind not in kinds["enum"]:
        kinds["enum"].append(kind)
if "delivery.create" not in kinds["description"]:
    kinds["description"] += (" delivery.create/update/complete/void are POST, PUT, PUT …/complete and DELETE on /sales/v2/deliveries;"
                             " trip.create/depart/sale/restock/end/void are POST /sales/v2/deliveries/retailer, its /depart, /sale,"
                             " /restock and /end, and DELETE /sales/v2/deliveries/retailer/{id}.")

# Operations open to every role (`TerminalRole.allCases`) now include drivers; the others say 403 to them.
EVERY_ROLE = {"getSale", "listSales", "getCheckIn", "listPackages"}
for path, item in P.items():
    for method, operation in item.items():
        roles = operation.get("x-till-roles")
        if roles is None:
            continue
        if operation["operationId"] in EVERY_ROLE:
            operation["x-till-roles"] = sorted(set(roles) | {"driver"})
            operation["description"] = operation["description"].replace("Roles: manager, pharmacist, register.",
                                                                        "Roles: driver, manager, pharmacist, register.")
        elif "403" not in operation["responses"]:
            operation["responses"]["403"] = forbidden(roles)
            operation["responses"] = dict(sorted(operation["responses"].items()))

alerts = S["Reporting"]["properties"]["alerts"]
alerts["description"] = ("What a manager must look at: days whose sales are still unreported as the state's deadline "
                         "(TILL_REPORTING_DEADLINE) nears or has passed (`reporting_deadline`), and deliveries or trips frozen "
                         "because Metrc shows a step Till did not take (`delivery_frozen`, `trip_frozen`).")
alerts["items"]["required"] = ["kind", "message"]
alerts["items"]["properties"]["kind"] = {"type": "string", "enum": ["reporting_deadline", "delivery_frozen", "trip_frozen"]}
alerts["items"]["properties"]["subject"] = {"type": "string", "description": "A frozen delivery or trip: `delivery:7`, `trip:3`."}
for key in ["date", "pending", "deadline", "overdue"]:
    alerts["items"]["properties"][key].setdefault("description", "reporting_deadline alerts only.")
PATH.write_text(json.dumps(d, indent=2, ensure_ascii=False) + "\n")
print("alerts schema:", json.dumps(alerts)[:400])
