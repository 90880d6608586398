import Foundation
import JSONWriting
import Logging
import Synchronization

/// swift-log's handler for `TILL_LOG_FORMAT=json`: one JSON object a line on standard error, with
/// timestamp, level, label, message and metadata, for a log shipper to read without parsing prose.
struct JSONLogHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?

    init(label: String, level: Logger.Level, metadataProvider: Logger.MetadataProvider? = LoggingSystem.metadataProvider) {
        self.label = label
        self.logLevel = level
        self.metadataProvider = metadataProvider
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        if let explicit = event.metadata { merged.merge(explicit) { _, new in new } }
        if let error = event.error { merged["error"] = "\(error)" }
        StandardError.writeLine(Self.line(at: Date(), level: event.level, label: label,
                                          message: event.message.description, metadata: merged))
    }

    /// The JSON object for one event, without its newline.
    static func line(at date: Date, level: Logger.Level, label: String, message: String,
                     metadata: Logger.Metadata) -> [UInt8] {
        var json = JSONWriter(capacity: 256)
        json.object { object in
            object.field("timestamp", date.formatted(timestampStyle))
            object.field("level", level.rawValue)
            object.field("label", label)
            object.field("message", message)
            object.field("metadata") { $0.metadata(metadata) }
        }
        return json.bytes
    }

    /// UTC to the millisecond: lines of one second must keep their order in a shipper that sorts by time.
    private static let timestampStyle = Date.ISO8601FormatStyle(includingFractionalSeconds: true)
}

extension JSONWriter {
    /// Metadata as a JSON object, keys sorted so that equal events give equal lines.
    mutating func metadata(_ metadata: Logger.Metadata) {
        object { object in
            for key in metadata.keys.sorted() {
                object.field(key) { $0.metadataValue(metadata[key]!) }
            }
        }
    }

    mutating func metadataValue(_ value: Logger.Metadata.Value) {
        switch value {
        case .string(let text): string(text)
        case .stringConvertible(let convertible): string(convertible.description)
        case .dictionary(let dictionary): metadata(dictionary)
        case .array(let values): array(values) { writer, value in writer.metadataValue(value) }
        }
    }
}

/// Standard error, one whole line per write: lines logged from several threads at once never interleave.
enum StandardError {
    private static let lock = Mutex(())

    static func writeLine(_ bytes: [UInt8]) {
        var line = bytes
        line.append(UInt8(ascii: "\n"))
        lock.withLock { _ in
            line.withUnsafeBytes { buffer in
                var offset = 0
                while offset < buffer.count {
                    let written = write(STDERR_FILENO, buffer.baseAddress! + offset, buffer.count - offset)
                    if written > 0 {
                        offset += written
                    } else if written < 0 && errno == EINTR {
                        continue
                    } else {
                        return  // stderr closed or full: a log line is not worth stopping a sale for
                    }
                }
            }
        }
    }
}
