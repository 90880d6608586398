import Foundation

/// Facility-local wall-clock time as Metrc wants it: "2026-11-22T14:05:00.000", no zone. DST-correct via Calendar in the facility TimeZone.
public enum MetrcLocalTime {
    /// `SalesDateTime` form: the facility's wall clock, milliseconds, no zone.
    public static func format(_ date: Date, in timeZone: TimeZone) -> String {
        let (whole, milliseconds) = split(date)
        let parts = calendar(timeZone).dateComponents([.year, .month, .day, .hour, .minute, .second], from: whole)
        return stamp(parts) + "." + pad(milliseconds, 3)
    }

    /// Reads Metrc's local form, with or without fractional seconds. A text that does carry a zone ("Z" or
    /// "+02:00") is read in that zone instead, since Metrc's answers are not consistent about it. In a
    /// fall-back hour the earlier (daylight) instant is chosen; a time inside a spring-forward gap moves forward.
    public static func parse(_ text: String, in timeZone: TimeZone) -> Date? {
        var scanner = Substring(text.trimmingCharacters(in: .whitespaces))
        guard let year = number(&scanner, digits: 4), literal(&scanner, "-"),
              let month = number(&scanner, digits: 2), literal(&scanner, "-"),
              let day = number(&scanner, digits: 2), literal(&scanner, "T") || literal(&scanner, " "),
              let hour = number(&scanner, digits: 2), literal(&scanner, ":"),
              let minute = number(&scanner, digits: 2)
        else { return nil }
        var second = 0
        var fraction = 0.0
        if literal(&scanner, ":") {
            guard let value = number(&scanner, digits: 2) else { return nil }
            second = value
            if literal(&scanner, ".") || literal(&scanner, ",") {
                let digits = scanner.prefix { $0.isASCII && $0.isNumber }
                guard !digits.isEmpty else { return nil }
                scanner = scanner.dropFirst(digits.count)
                fraction = Double("0." + digits) ?? 0
            }
        }
        var zone = timeZone
        if literal(&scanner, "Z") || literal(&scanner, "z") {
            zone = TimeZone(identifier: "UTC")!
        } else if let sign = scanner.first, sign == "+" || sign == "-" {
            scanner = scanner.dropFirst()
            guard let hours = number(&scanner, digits: 2) else { return nil }
            _ = literal(&scanner, ":")
            let minutes = number(&scanner, digits: 2) ?? 0
            let offset = (hours * 3600 + minutes * 60) * (sign == "-" ? -1 : 1)
            guard let fixed = TimeZone(secondsFromGMT: offset) else { return nil }
            zone = fixed
        }
        guard scanner.isEmpty, (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 61
        else { return nil }
        let parts = DateComponents(year: year, month: month, day: day, hour: hour, minute: minute, second: second)
        guard let whole = calendar(zone).date(from: parts) else { return nil }
        return whole.addingTimeInterval(fraction)
    }

    /// Query-filter form: ISO 8601 UTC "2026-11-22T21:05:00Z"
    public static func filter(_ date: Date) -> String {
        let parts = calendar(TimeZone(identifier: "UTC")!)
            .dateComponents([.year, .month, .day, .hour, .minute, .second], from: split(date).whole)
        return stamp(parts) + "Z"
    }

    // Calendar's nanosecond component drifts (…999999); whole seconds and milliseconds are cut apart here instead.
    private static func split(_ date: Date) -> (whole: Date, milliseconds: Int) {
        let seconds = date.timeIntervalSince1970
        let whole = seconds.rounded(.down)
        let milliseconds = min(999, max(0, Int(((seconds - whole) * 1000).rounded(.down))))
        return (Date(timeIntervalSince1970: whole), milliseconds)
    }

    private static func calendar(_ timeZone: TimeZone) -> Calendar {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        return calendar
    }

    private static func stamp(_ parts: DateComponents) -> String {
        pad(parts.year ?? 0, 4) + "-" + pad(parts.month ?? 0, 2) + "-" + pad(parts.day ?? 0, 2) + "T"
            + pad(parts.hour ?? 0, 2) + ":" + pad(parts.minute ?? 0, 2) + ":" + pad(parts.second ?? 0, 2)
    }

    private static func pad(_ value: Int, _ width: Int) -> String {
        let digits = String(value)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }

    private static func number(_ scanner: inout Substring, digits: Int) -> Int? {
        let prefix = scanner.prefix(digits)
        guard prefix.count == digits, prefix.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        scanner = scanner.dropFirst(digits)
        return Int(prefix)
    }

    private static func literal(_ scanner: inout Substring, _ character: Character) -> Bool {
        guard scanner.first == character else { return false }
        scanner = scanner.dropFirst()
        return true
    }
}
