import MetrcKit

/// What the drain needs of one kind of outbox row (a receipt, a check-in): how to find it in Metrc,
/// how to send a batch, and how to record each outcome.
struct OutboxKind<Item: Sendable> {
    /// Metrc's Id if Metrc already holds this item (an earlier attempt got through), else nil.
    var lookUp: (Item) async throws(MetrcError) -> Int64?
    /// Posts a batch; Metrc's Ids in posted order.
    var send: ([Item]) async throws(MetrcError) -> [Int64]
    /// Metrc holds these; `found` when a lookup, not a post, showed it.
    var reported: (_ items: [(Item, Int64)], _ found: Bool) async -> Void
    var rejected: (Item, [MetrcRowError]) async -> Void
    /// A retryable failure; `uncertain` when Metrc may already hold some of them.
    var failed: (_ items: [Item], MetrcError, _ uncertain: Bool) async -> Void
}

extension ReceiptReporter {
    /// Reports leased outbox rows exactly once: those an earlier attempt may have delivered are looked up
    /// first, the rest go in batches of `batchSize`, and a refused batch is split so that one bad item never
    /// holds up the others (Metrc applies none of a refused request, so the good ones can go again at once).
    func drain<Item: Sendable>(_ due: [(item: Item, needsLookup: Bool)], _ kind: OutboxKind<Item>) async {
        var toPost: [Item] = []
        for entry in due {
            guard entry.needsLookup else {
                toPost.append(entry.item)
                continue
            }
            do {
                if let id = try await kind.lookUp(entry.item) {
                    await kind.reported([(entry.item, id)], true)
                } else {
                    toPost.append(entry.item)
                }
            } catch {
                await kind.failed([entry.item], error, true)
            }
        }
        var index = 0
        while index < toPost.count {
            let batch = Array(toPost[index..<min(index + settings.batchSize, toPost.count)])
            index += batch.count
            await post(batch, kind)
        }
    }

    private func post<Item: Sendable>(_ batch: [Item], _ kind: OutboxKind<Item>) async {
        guard !batch.isEmpty else { return }
        do {
            let ids = try await kind.send(batch)
            if ids.count == batch.count {
                await kind.reported(Array(zip(batch, ids)), false)
            } else {
                await kind.failed(batch, .invalidResponse("\(ids.count) Ids for \(batch.count) items"), true)
            }
        } catch {
            guard case .rejected(let rows) = error else {
                await kind.failed(batch, error, false)
                return
            }
            let badRows = Set(rows.compactMap(\.row).filter { batch.indices.contains($0) })
            if batch.count == 1 {
                await kind.rejected(batch[0], rows)
            } else if !badRows.isEmpty {
                for row in badRows.sorted() {
                    await kind.rejected(batch[row], rows.filter { $0.row == row })
                }
                await post(batch.enumerated().filter { !badRows.contains($0.offset) }.map(\.element), kind)
            } else {
                // Metrc did not say which item it refused: halve until it does.
                let middle = batch.count / 2
                await post(Array(batch[..<middle]), kind)
                await post(Array(batch[middle...]), kind)
            }
        }
    }
}
