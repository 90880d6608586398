import CurlHTTP
import Foundation
import MetrcKit
import MetrcSimulator
import TillLoad

/// One receipt POSTed straight to the simulator, with the libcurl client and the encoder Till uses for
/// Metrc: the bare call Till's overhead is measured against.
struct BareMetrc: Sendable {
    private let client = CurlHTTPClient()
    private let headers: [(name: String, value: String)]
    private let url: String
    private let zone: TimeZone
    private let packageLabel: String
    private let receiptPrefix: String

    init(baseURL: String, keys: SimulatorConfiguration, license: String, timeZone: String, packageLabel: String,
         receiptPrefix: String) {
        headers = [
            (name: "Authorization", value: "Basic " + Data("\(keys.vendorKey):\(keys.userKey)".utf8).base64EncodedString()),
            (name: "Accept", value: "application/json"),
            (name: "Content-Type", value: "application/json"),
        ]
        url = baseURL + "/sales/v2/receipts?licenseNumber=\(license)"
        zone = TimeZone(identifier: timeZone)!
        self.packageLabel = packageLabel
        self.receiptPrefix = receiptPrefix
    }

    /// Posts receipt `number` (its external number is the prefix and the number); the latency, and what
    /// went wrong if Metrc did not answer 200.
    func post(number: Int) async -> (Duration, failure: String?) {
        let receipt = MetrcReceiptDraft(
            salesDateTime: MetrcLocalTime.format(Date(), in: zone), salesCustomerType: "Consumer",
            externalReceiptNumber: receiptPrefix + String(number),
            transactions: [MetrcTransactionDraft(packageLabel: packageLabel, quantity: 1, unitOfMeasure: "Each", totalAmount: 1)])
        let body = (try? MetrcJSON.makeEncoder().encode([receipt])) ?? Data()
        let request = HTTPRequest(method: "POST", url: url, headers: headers, body: body, timeout: .seconds(10))
        let started = ContinuousClock.now
        do {
            let response = try await client.send(request)
            let latency = ContinuousClock.now - started
            guard response.status == 200 else {
                return (latency, "HTTP \(response.status): \(String(decoding: response.body.prefix(300), as: UTF8.self))")
            }
            return (latency, nil)
        } catch {
            return (ContinuousClock.now - started, "no answer: \(error)")
        }
    }
}
