import Foundation
import Hummingbird
import JSONWriting
import TillDomain
import TillPatients
import TillReporter
import TillStore

/// The register-facing routes; each one reads its input, asks the desk or store, and answers JSON.
struct Routes: Sendable {
    let services: TillServices

    func add(to router: Router<TillRequestContext>) {
        let v1 = router.group("v1")
        v1.post("sales", use: postSale)
        v1.get("sales", use: listSales)
        v1.get("sales/:id", use: getSale)
        v1.post("sales/:id/returns", use: postReturn)
        v1.get("quarantine", use: quarantine)
        v1.get("days/:date", use: dayView)
        v1.post("days/:date/repair", use: dayRepair)
        v1.post("days/:date/close", use: dayClose)
        v1.get("days/:date/report", use: dayReport)
        v1.get("packages", use: listPackages)
        v1.get("reporting", use: reporting)
        v1.get("patients/:license/status", use: patientStatus)
        v1.get("caregivers/:license/status", use: caregiverStatus)
        v1.post("patients/:license/checkins", use: postCheckIn)
        v1.get("checkins/:id", use: getCheckIn)
        v1.get("metrics", use: metricsPage)
        v1.get("health", use: health)
        v1.get("openapi.json", use: openAPI)
    }

    // MARK: Sales

    @Sendable func postSale(_ request: Request, context: TillRequestContext) async throws -> Response {
        let terminal = try context.requireTerminal([.register, .manager])
        let outcome: SaleOutcome
        do {
            let body = try await Self.readBody(request, context: context)
            let sale = try RequestDecoding.decodeSale(body)
            let digest = sha256Hex(RequestDecoding.canonical(sale))
            outcome = try await services.desk.sell(sale, requestDigest: digest, terminal: terminal)
        } catch let error as TillError {
            services.refusals.count(error.code)
            throw error
        }
        switch outcome {
        case .reported(let sale):
            return JSONResponse.make(SaleView(sale), status: .created)
        case .pendingReport(let sale):
            return JSONResponse.make(SaleView(sale), status: .accepted)
        case .rejected(let sale):
            throw TillError.unprocessable(
                "metrc_rejected",
                "Metrc refused the sale: " + (sale.rejection ?? []).joined(separator: "; "),
                details: ["saleId": "\(sale.id)", "receiptNumber": sale.receiptNumber,
                          "metrcMessages": (sale.rejection ?? []).joined(separator: "\n")])
        }
    }

    @Sendable func getSale(_ request: Request, context: TillRequestContext) async throws -> Response {
        _ = try context.requireTerminal(Set(TerminalRole.allCases))
        let id = try Self.idParameter(context, code: "invalid_sale_id", noun: "sale")
        let found = try await Self.current(services.store) {
            (try services.store.sale(id: id), try services.store.returns(saleId: id))
        }
        guard let sale = found.0 else {
            throw TillError(.notFound, code: "sale_not_found", "No sale with id \(id).")
        }
        return JSONResponse.make(SaleView(sale, returns: found.1))
    }

    @Sendable func listSales(_ request: Request, context: TillRequestContext) async throws -> Response {
        _ = try context.requireTerminal(Set(TerminalRole.allCases))
        let date = request.uri.queryParameters.get("date")
            ?? FacilityDate.string(of: Date(), in: services.configuration.timeZone)
        guard Self.isCalendarDate(date) else {
            throw TillError.invalid("invalid_date", "date must be YYYY-MM-DD (the facility's local date).")
        }
        let (sales, returns) = try await Self.current(services.store) {
            (try services.store.sales(businessDate: date), try services.store.returns(ofSalesOn: date))
        }
        let gross = sales.filter { !($0.status == .rejected && $0.saleUndone) }.reduce(Money.zero) { $0 + $1.totalAmount }
        let returned = returns.reduce(Money.zero) { $0 + $1.totalAmount }
        let bySale = Dictionary(grouping: returns, by: \.saleId)
        return JSONResponse.make(SalesListView(date: date, count: sales.count, grossAmount: gross, returnedAmount: returned,
                                               sales: sales.map { SaleView($0, returns: bySale[$0.id] ?? []) }))
    }

    // MARK: Returns

    @Sendable func postReturn(_ request: Request, context: TillRequestContext) async throws -> Response {
        let terminal = try context.requireTerminal([.manager, .register])
        guard terminal.role == .manager || services.configuration.registerReturns else {
            throw TillError(.forbidden, code: "forbidden",
                            "A register terminal cannot take returns here (TILL_REGISTER_RETURNS is off); a manager can.")
        }
        let saleId = try Self.idParameter(context, code: "invalid_sale_id", noun: "sale")
        let body = try RequestDecoding.decodeReturn(try await Self.readBody(request, context: context))
        let digest = sha256Hex(RequestDecoding.canonical(body))
        let (saleReturn, _) = try await services.returns.takeBack(saleId: saleId, body, requestDigest: digest, terminal: terminal)
        var json = JSONWriter()
        ReturnView(saleReturn).write(into: &json)
        let status: HTTPResponse.Status = switch saleReturn.status {
        case .reported: .created
        case .pendingReport: .accepted
        case .rejected, .voided: .ok
        }
        return Response(status: status, headers: [.contentType: "application/json; charset=utf-8"],
                        body: .init(byteBuffer: ByteBuffer(bytes: json.bytes)))
    }

    // MARK: The manager's day

    @Sendable func dayView(_ request: Request, context: TillRequestContext) async throws -> Response {
        _ = try context.requireTerminal([.manager])
        let view = DayJSON(try await services.days.view(try Self.dateParameter(context)))
        return try Self.formatted(request, json: view, csv: { view.csv }, html: nil)
    }

    @Sendable func dayRepair(_ request: Request, context: TillRequestContext) async throws -> Response {
        let terminal = try context.requireTerminal([.manager])
        let date = try Self.dateParameter(context)
        let body = try await Self.readBody(request, context: context)
        let dryRun = try RequestDecoding.decodeRepair(body).dryRun ?? false
        let (view, actions) = try await services.days.repair(date, dryRun: dryRun, by: "terminal:\(terminal.name)")
        return JSONResponse.make(RepairJSON(dryRun: dryRun, actions: actions, day: DayJSON(view)))
    }

    @Sendable func dayClose(_ request: Request, context: TillRequestContext) async throws -> Response {
        let terminal = try context.requireTerminal([.manager])
        let date = try Self.dateParameter(context)
        switch try await services.days.close(date, by: "terminal:\(terminal.name)") {
        case .blocked(let blockers):
            throw TillError(.conflict, code: "day_close_blocked",
                            "The day \(date) cannot close yet: \(blockers.count) thing(s) still to settle with Metrc.",
                            details: ["count": "\(blockers.count)",
                                      "blockers": blockers.map { "\($0.kind) \($0.subject): \($0.message)" }.joined(separator: "\n")])
        case .closing(let close):
            let view = DayJSON.Close(close)
            return JSONResponse.make(view, status: view.status == "closed" ? .ok : .accepted)
        }
    }

    @Sendable func dayReport(_ request: Request, context: TillRequestContext) async throws -> Response {
        _ = try context.requireTerminal([.manager])
        let date = try Self.dateParameter(context)
        let view = try await services.days.view(date)
        let (sales, returns) = try Self.stored { (try services.store.sales(businessDate: date), try services.store.returns(ofSalesOn: date)) }
        let report = DayReportJSON(view, sales: sales, returns: returns)
        return try Self.formatted(request, json: report, csv: { report.csv }, html: { report.html })
    }

    /// `?format=json` (the default), `csv`, or `html` where the answer has a page.
    static func formatted(_ request: Request, json: some Encodable, csv: () -> String,
                          html: (() -> String)?) throws -> Response {
        switch request.uri.queryParameters.get("format")?.lowercased() ?? "json" {
        case "json": return JSONResponse.make(json)
        case "csv": return text(csv(), type: "text/csv; charset=utf-8")
        case "html" where html != nil: return text(html!(), type: "text/html; charset=utf-8")
        default:
            throw TillError.invalid("invalid_format", "format must be json or csv" + (html == nil ? "." : ", or html."))
        }
    }

    static func text(_ body: String, type: String) -> Response {
        Response(status: .ok, headers: [.contentType: type], body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    /// The `{date}` path parameter: a real facility-local date.
    static func dateParameter(_ context: TillRequestContext) throws(TillError) -> String {
        guard let date = context.parameters.get("date"), isCalendarDate(date) else {
            throw .invalid("invalid_date", "date must be YYYY-MM-DD (the facility's local date).")
        }
        return date
    }

    @Sendable func quarantine(_ request: Request, context: TillRequestContext) async throws -> Response {
        _ = try context.requireTerminal([.manager, .pharmacist])
        return JSONResponse.make(HeldStockView(try Self.stored { try services.store.heldStock() }))
    }

    // MARK: Patients and caregivers

    @Sendable func patientStatus(_ request: Request, context: TillRequestContext) async throws -> Response {
        let terminal = try context.requireTerminal([.pharmacist, .register, .manager])
        let number = try Self.licenseParameter(context)
        let found = try await services.patients.patient(number, askedBy: "terminal:\(terminal.name)", terminalId: terminal.id)
        return JSONResponse.make(PatientStatusView(found, now: Date(), timeZone: services.configuration.timeZone))
    }

    @Sendable func caregiverStatus(_ request: Request, context: TillRequestContext) async throws -> Response {
        let terminal = try context.requireTerminal([.pharmacist, .register, .manager])
        let number = try Self.licenseParameter(context)
        let found = try await services.patients.caregiver(number, askedBy: "terminal:\(terminal.name)", terminalId: terminal.id)
        return JSONResponse.make(CaregiverStatusView(found, now: Date()))
    }

    @Sendable func postCheckIn(_ request: Request, context: TillRequestContext) async throws -> Response {
        let terminal = try context.requireTerminal([.pharmacist, .register, .manager])
        let number = try Self.licenseParameter(context)
        let body = try RequestDecoding.decodeCheckIn(try await Self.readBody(request, context: context))
        let today = FacilityDate.string(of: Date(), in: services.configuration.timeZone)
        for date in [body.checkInDate, body.registrationStartDate, body.registrationExpiryDate].compactMap({ $0 })
        where !Self.isCalendarDate(date) {
            throw TillError.invalid("invalid_date", "'\(date)' is not a YYYY-MM-DD date.")
        }
        guard body.checkInLocationId > 0 else {
            throw TillError.invalid("invalid_field", "checkInLocationId must be a Metrc check-in location Id.",
                                    details: ["field": "checkInLocationId"])
        }
        let checkIn = try Self.stored { try services.store.recordCheckIn(
            clientCheckInId: body.clientCheckInId, patientLicenseNumber: number, locationId: body.checkInLocationId,
            checkInDate: body.checkInDate, today: today, registrationStartDate: body.registrationStartDate,
            registrationExpiryDate: body.registrationExpiryDate, terminalId: terminal.id,
            actor: "terminal:\(terminal.name)", license: services.configuration.license, at: Date(),
            metrcBody: MetrcBodies.checkIn) }
        services.reporter.wake()
        return JSONResponse.make(CheckInView(checkIn), status: checkIn.status == .reported ? .ok : .accepted)
    }

    @Sendable func getCheckIn(_ request: Request, context: TillRequestContext) async throws -> Response {
        _ = try context.requireTerminal(Set(TerminalRole.allCases))
        let id = try Self.idParameter(context, code: "invalid_checkin_id", noun: "check-in")
        guard let checkIn = try Self.stored({ try services.store.checkIn(id: id) }) else {
            throw TillError(.notFound, code: "checkin_not_found", "No check-in with id \(id).")
        }
        return JSONResponse.make(CheckInView(checkIn))
    }

    /// A store read or write; a database failure is the service being unavailable, not a bug in the request.
    static func stored<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch {
            throw TillError.fromStore(error)
        }
    }

    /// A read of where sales stand, after the sale path's writes handed in before it: a register hears
    /// Metrc's answer before the write recording it commits.
    static func current<T>(_ store: TillStore, _ body: () throws -> T) async throws -> T {
        await store.caughtUp()
        return try stored(body)
    }

    /// The `{id}` path parameter, a positive whole number.
    static func idParameter(_ context: TillRequestContext, code: String, noun: String) throws(TillError) -> Int64 {
        guard let id = context.parameters.get("id", as: Int64.self), id > 0 else {
            throw .invalid(code, "A \(noun) id is a positive whole number.")
        }
        return id
    }

    static func licenseParameter(_ context: TillRequestContext) throws(TillError) -> String {
        guard let number = context.parameters.get("license")?.removingPercentEncoding, !number.isEmpty, number.count <= 64,
              number.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }) else {
            throw .invalid("invalid_license_number", "A license number is 1 to 64 letters, digits, '-', '_' or '.'.")
        }
        return number
    }

    // MARK: Stock and reporting

    @Sendable func listPackages(_ request: Request, context: TillRequestContext) async throws -> Response {
        _ = try context.requireTerminal(Set(TerminalRole.allCases))
        let packages = try Self.stored { try services.store.sellablePackages() }
        return JSONResponse.make(PackagesView(packages: packages.map(PackageView.init)))
    }

    @Sendable func reporting(_ request: Request, context: TillRequestContext) async throws -> Response {
        _ = try context.requireTerminal([.manager, .register])
        let (summary, journal, returns, days) = try await Self.current(services.store) {
            (try services.store.reportingSummary(), try services.store.journalSummary(), try services.store.returnCounts(),
             try services.store.pendingSalesByDay())
        }
        let health = services.health.current()
        var view = ReportingView(summary: summary, journal: journal, returns: returns, health: health, now: Date())
        view.alerts = Self.deadlineAlerts(days, deadline: services.configuration.reportingDeadline,
                                          timeZone: services.configuration.timeZone, now: Date())
            + (try services.store.deliveryAlerts()).map { alert in
                ReportingView.DeadlineAlert(kind: "\(alert.subject.type)_frozen", subject: "\(alert.subject)",
                                            message: "\(alert.subject.type == "trip" ? "Trip" : "Delivery") \(alert.subject.id) is frozen: \(alert.message). Nothing more is sent to Metrc for it; check it on Metrc's website.")
            }
        return JSONResponse.make(view)
    }

    /// A day whose oldest unreported sale nears the state's reporting deadline (or is past it).
    static func deadlineAlerts(_ days: [(businessDate: String, count: Int, oldestSoldAt: Date)], deadline rule: ReportingDeadline,
                               timeZone: TimeZone, now: Date) -> [ReportingView.DeadlineAlert] {
        days.compactMap { day in
            let deadline = rule.deadline(soldAt: day.oldestSoldAt, businessDate: day.businessDate, in: timeZone)
            guard now >= rule.alertAt(deadline: deadline) else { return nil }
            let overdue = now > deadline
            return ReportingView.DeadlineAlert(
                date: day.businessDate, pending: day.count, deadline: deadline, overdue: overdue,
                message: "\(day.count) sale(s) of \(day.businessDate) not yet in Metrc; "
                    + (rule == .realTime ? "this state expects sales reported at once (TILL_REPORTING_DEADLINE=now)"
                       : overdue ? "the deadline (\(rule)) has passed" : "the deadline (\(rule)) is near"))
        }
    }

    @Sendable func metricsPage(_ request: Request, context: TillRequestContext) async throws -> Response {
        _ = try context.requireTerminal([.manager])
        return try await MetricsPage.response(services)
    }

    @Sendable func health(_ request: Request, context: TillRequestContext) async throws -> Response {
        let durability = try Self.stored { try services.store.durabilitySettings() }
        let pending = try await Self.current(services.store) { try services.store.pendingReportCount() }
        return JSONResponse.make(HealthView(status: "ok", license: services.configuration.license,
                                            journalMode: durability.journalMode,
                                            synchronous: durability.synchronous == 2 ? "full" : "\(durability.synchronous)",
                                            pendingReports: pending))
    }

    @Sendable func openAPI(_ request: Request, context: TillRequestContext) async throws -> Response {
        Response(status: .ok, headers: [.contentType: "application/json"],
                 body: .init(byteBuffer: ByteBuffer(bytes: OpenAPIDocument.data)))
    }

    /// A real YYYY-MM-DD date (2026-13-45 is not).
    static func isCalendarDate(_ text: String) -> Bool {
        guard let match = text.wholeMatch(of: /(\d{4})-(\d{2})-(\d{2})/),
              let year = Int(match.1), let month = Int(match.2), let day = Int(match.3) else { return false }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let components = DateComponents(year: year, month: month, day: day)
        guard let date = calendar.date(from: components) else { return false }
        let back = calendar.dateComponents([.year, .month, .day], from: date)
        return back.year == year && back.month == month && back.day == day
    }

    /// Reads the whole body, refusing an oversized one before reading it.
    static func readBody(_ request: Request, context: TillRequestContext) async throws -> Data {
        if let length = request.headers[.contentLength].flatMap(Int.init), length > context.maxUploadSize {
            throw TillError(.invalidRequest, code: "payload_too_large",
                            "The request body is larger than \(context.maxUploadSize) bytes.")
        }
        let buffer = try await request.body.collect(upTo: context.maxUploadSize)
        return Data(buffer.readableBytesView)
    }
}

/// The OpenAPI document shipped in the repository (Sources/TillAPI/openapi.json).
enum OpenAPIDocument {
    static let data: Data = {
        guard let url = Bundle.module.url(forResource: "openapi", withExtension: "json"),
              let data = try? Data(contentsOf: url) else { return Data("{}".utf8) }
        return data
    }()
}
