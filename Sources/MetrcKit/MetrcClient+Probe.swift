import CurlHTTP
import Foundation

/// Metrc's answer to one diagnostic request, as it came.
public enum MetrcProbe: Sendable {
    /// Metrc answered, with whatever status.
    case answered(HTTPResponse)
    /// No answer came (refused connection, time-out, bad URL): why.
    case noAnswer(String)
}

extension MetrcClient {
    /// One GET of `path` sent as Till sends any (Basic auth, `licenseNumber` when facility-scoped, inside the
    /// facility's limits), with Metrc's answer as it came, whatever its status and headers: for `till doctor`,
    /// which reports what Metrc says (a 401, its `Date`) rather than what Till makes of it.
    public func probe(_ path: String, query: [(name: String, value: String)] = [],
                      facilityScoped: Bool = true) async -> MetrcProbe {
        let call = Call("GET", path, query: query, facilityScoped: facilityScoped)
        do {
            try await limiter.acquire(isWrite: false)
        } catch {
            return .noAnswer("cancelled")
        }
        defer { limiter.release() }
        do {
            let response = try await transport.send(httpRequest(for: call))
            log(.debug, "Metrc probe answered", call, status: response.status, elapsed: nil)
            return .answered(response)
        } catch {
            switch error {
            case .notSent(let why), .noAnswer(let why): return .noAnswer(why)
            }
        }
    }
}
