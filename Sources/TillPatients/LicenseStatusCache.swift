import Foundation
import Logging
import MetrcKit
import Metrics
import TillDomain
import TillStore

/// Statuses of one kind of license (patient or caregiver), fetched from Metrc at most once a minute.
///
/// Metrc caches these answers up to a minute itself, so asking more often buys nothing. Lookups of a
/// license already being fetched await that fetch instead of starting another. When Metrc cannot be
/// reached the last known status is returned marked `stale`, never as fresh.
actor LicenseStatusCache<Value: Codable & Sendable> {
    typealias Fetch = @Sendable (String) async throws(MetrcError) -> Value?

    private struct Entry {
        var value: Value?  // nil: Metrc does not know the license
        var fetchedAt: Date
    }

    private struct Fetched: Sendable {
        var value: Value?
        var fetchedAt: Date
    }

    private let kind: String
    private let fetch: Fetch
    private let store: TillStore
    private let ttl: TimeInterval
    private let now: @Sendable () -> Date
    private let logger: Logger
    /// How long a lookup waits for Metrc before answering from what it knows (the fetch runs on and fills the cache).
    private let patience: Duration
    private var entries: [String: Entry] = [:]
    private var inFlight: [String: (id: UUID, task: Task<Result<Fetched, MetrcError>, Never>)] = [:]
    /// Lookups since start by where their answer came from, `failed` for none: for the hit ratio at a scrape.
    private var tally = LookupTally()
    /// The same, as `till_license_status_lookups_total{kind, source}`.
    private let counters: [LookupTally.Source: Counter]

    init(kind: String, ttl: Duration, patience: Duration, store: TillStore, logger: Logger,
         now: @escaping @Sendable () -> Date, fetch: @escaping Fetch) {
        self.patience = patience
        self.kind = kind
        self.fetch = fetch
        self.store = store
        self.ttl = TimeInterval(ttl.components.seconds) + TimeInterval(ttl.components.attoseconds) / 1e18
        self.now = now
        self.logger = logger
        counters = Dictionary(uniqueKeysWithValues: LookupTally.Source.allCases.map { source in
            (source, Counter(label: "till_license_status_lookups_total", dimensions: [("kind", kind), ("source", source.rawValue)]))
        })
    }

    /// Lookups since start, by source.
    func lookups() -> LookupTally { tally }

    private func count(_ source: LookupTally.Source) {
        tally.add(source)
        counters[source]?.increment()
    }

    /// The status of `license`; nil when Metrc does not know it.
    func lookup(_ license: String) async throws(TillError) -> LookedUp<Value?> {
        do {
            let found = try await find(license)
            count(LookupTally.Source(rawValue: found.source.rawValue) ?? .failed)
            return found
        } catch {
            count(.failed)
            throw error
        }
    }

    private func find(_ license: String) async throws(TillError) -> LookedUp<Value?> {
        let key = LicenseNumber.key(license)
        if let entry = entries[key], now().timeIntervalSince(entry.fetchedAt) < ttl {
            return LookedUp(value: entry.value, source: .cache, fetchedAt: entry.fetchedAt)
        }
        let task = inFlight[key]?.task ?? startFetch(license, key: key)
        guard let result = await task.value(within: patience) else {
            // The fetch runs on and records its answer when it comes; this lookup answers from what is known.
            return try staleOrThrow(key, error: .ambiguous("no answer from Metrc within \(patience)"))
        }
        switch result {
        case .success(let fetched):
            return LookedUp(value: fetched.value, source: .metrc, fetchedAt: fetched.fetchedAt)
        case .failure(let error):
            return try staleOrThrow(key, error: error)
        }
    }

    /// One fetch per license at a time; it records its own outcome, so an answer that arrives after every
    /// waiter gave up still refreshes the cache, and a finished fetch is never handed to a later lookup.
    private func startFetch(_ license: String, key: String) -> Task<Result<Fetched, MetrcError>, Never> {
        let fetch = self.fetch, now = self.now
        let id = UUID()
        let task = Task<Result<Fetched, MetrcError>, Never> {
            let result: Result<Fetched, MetrcError>
            do throws(MetrcError) {
                result = .success(Fetched(value: try await fetch(license), fetchedAt: now()))
            } catch {
                result = .failure(error)
            }
            self.finish(key, id: id, result: result)  // the task runs on this actor
            return result
        }
        inFlight[key] = (id, task)
        return task
    }

    private func finish(_ key: String, id: UUID, result: Result<Fetched, MetrcError>) {
        if inFlight[key]?.id == id { inFlight[key] = nil }
        guard case .success(let fetched) = result,
              entries[key].map({ $0.fetchedAt < fetched.fetchedAt }) ?? true else { return }
        entries[key] = Entry(value: fetched.value, fetchedAt: fetched.fetchedAt)
        guard let value = fetched.value else { return }
        do {
            try store.saveLicenseStatus(value, kind: kind, licenseNumber: key, fetchedAt: fetched.fetchedAt)
        } catch {
            logger.warning("could not keep a \(kind) status", metadata: ["error": "\(error)"])
        }
    }

    private func staleOrThrow(_ license: String, error: MetrcError) throws(TillError) -> LookedUp<Value?> {
        if case .unauthorized = error {
            throw TillError(.unavailable, code: "metrc_unauthorized",
                            "Metrc refused Till's API keys for this facility; a manager must check them.")
        }
        var known: (value: Value, fetchedAt: Date)? = nil
        if let entry = entries[license], let value = entry.value {
            known = (value, entry.fetchedAt)
        } else if let stored = try? store.licenseStatus(Value.self, kind: kind, licenseNumber: license) {
            known = (stored.0, stored.1)
        }
        guard let known else {
            throw TillError(.unavailable, code: "metrc_unavailable",
                            "Metrc cannot be reached and Till has never seen this \(kind)'s status.",
                            details: ["metrcError": "\(error)"])
        }
        logger.notice("Metrc unreachable; answering a stale \(kind) status",
                      metadata: ["license": "\(MetrcRedaction.mask(license))",
                                 "ageSeconds": "\(Int(now().timeIntervalSince(known.fetchedAt)))"])
        return LookedUp(value: known.value, source: .stale, fetchedAt: known.fetchedAt)
    }
}

/// License status lookups counted by where their answer came from.
public struct LookupTally: Sendable, Equatable {
    public enum Source: String, CaseIterable, Sendable {
        /// Till's own cache, within Metrc's minute.
        case cache
        /// Metrc, asked for this lookup.
        case metrc
        /// The last known status, Metrc not answering.
        case stale
        /// No answer at all (Metrc not answering and no status known, or Metrc refusing Till's keys).
        case failed
    }

    public private(set) var counts: [Source: Int] = [:]

    public init() {}

    mutating func add(_ source: Source) { counts[source, default: 0] += 1 }

    public var total: Int { counts.values.reduce(0, +) }

    /// Cache answers among all lookups; nil before the first lookup.
    public var hitRatio: Double? {
        total == 0 ? nil : Double(counts[.cache] ?? 0) / Double(total)
    }
}
